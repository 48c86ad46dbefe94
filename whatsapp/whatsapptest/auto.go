package whatsapptest

import (
	"slices"
	"time"
)

// AutoStatus makes the fake send status webhooks for every accepted
// message, as a live number does, for the demo and for tests of status
// handling. Deliveries run in the background, one sequence per message;
// failures are recorded (Deliveries), not returned.
type AutoStatus struct {
	// Statuses are sent in this order (default sent, delivered, read).
	Statuses []string
	// Interval is the wait before each status (default none).
	Interval time.Duration
	// Shuffle sends them in a random order and Duplicate sends each twice,
	// as Meta's at-least-once, unordered delivery may: a receiver must
	// deduplicate and apply statuses monotonically. Random choices follow
	// Options.Seed.
	Shuffle   bool
	Duplicate bool
}

// Customers simulates the recipients of template messages for the demo:
// a fraction answers, with a quick-reply tap or a text, after a delay.
// The choices follow Options.Seed, so a run can be repeated.
type Customers struct {
	// ReplyRate is the fraction of template messages answered, 0 to 1.
	ReplyRate float64
	// TapRate is the fraction of answers that tap a quick-reply button of
	// the template (when it has one; one at random when it has several,
	// as a survey's scores); the others write Text.
	TapRate float64
	// Text is what a writing customer sends (default "Hola").
	Text string
	// Delay is the wait before answering, after any automatic statuses.
	Delay time.Duration
	// AlwaysTap names templates whose answers are always taps, as a
	// survey's are: a customer answers a score with a button, not text.
	AlwaysTap []string
}

// plan is what the fake does after accepting one message.
type plan struct {
	wamid    string
	from     string // the customer, for a reply
	phoneID  string
	failCode int // report this in a "failed" status, and nothing else
	statuses []string
	interval time.Duration
	reply    string // "", "tap" or "text"
	payload  string // for a tap
	text     string
	delay    time.Duration
}

// followUp plans and starts what happens after m was accepted. s.mu must
// be held (it draws from s.rng and must not race Close).
func (s *Server) followUp(m Message, tpl *Template, failCode int) {
	p := plan{wamid: m.WAMID, from: digits(m.Body.To), phoneID: m.PhoneNumberID, failCode: failCode}
	if failCode == 0 {
		if a := s.opts.AutoStatus; a != nil {
			p.interval = a.Interval
			p.statuses = a.Statuses
			if len(p.statuses) == 0 {
				p.statuses = []string{"sent", "delivered", "read"}
			}
			if a.Duplicate {
				var d []string
				for _, st := range p.statuses {
					d = append(d, st, st)
				}
				p.statuses = d
			} else {
				p.statuses = append([]string(nil), p.statuses...)
			}
			if a.Shuffle {
				s.rng.Shuffle(len(p.statuses), func(i, j int) { p.statuses[i], p.statuses[j] = p.statuses[j], p.statuses[i] })
			}
		}
		if c := s.opts.Customers; c != nil && tpl != nil && s.rng.Float64() < c.ReplyRate {
			p.delay = c.Delay
			p.reply, p.text = "text", c.Text
			if p.text == "" {
				p.text = "Hola"
			}
			if payload, label, ok := tpl.tapPayload(m.Body.Template, s.rng.IntN); ok && (slices.Contains(c.AlwaysTap, tpl.Name) || s.rng.Float64() < c.TapRate) {
				p.reply, p.payload, p.text = "tap", payload, label
			}
		}
	}
	if s.closed || (p.failCode == 0 && len(p.statuses) == 0 && p.reply == "") {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(p)
	}()
}

// run carries out a plan until it is done or the server closes. Delivery
// errors are in Deliveries; there is no caller to return them to.
func (s *Server) run(p plan) {
	ctx := s.ctx
	if p.failCode != 0 {
		_ = s.SendStatus(ctx, p.wamid, "failed", WithError(p.failCode)) // recorded in Deliveries
		return
	}
	for _, st := range p.statuses {
		if !s.sleep(ctx, p.interval) {
			return
		}
		_ = s.SendStatus(ctx, p.wamid, st) // recorded in Deliveries
	}
	if p.reply == "" || !s.sleep(ctx, p.delay) {
		return
	}
	opt := WithPhoneNumberID(p.phoneID)
	if p.reply == "tap" {
		_, _ = s.SendButtonTap(ctx, p.from, p.wamid, p.payload, p.text, opt) // recorded in Deliveries
		return
	}
	_, _ = s.SendText(ctx, p.from, p.text, opt) // recorded in Deliveries
}
