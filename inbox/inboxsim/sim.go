// Package inboxsim provides simulated agents who work the inbox over its
// HTTP API, and the customers who write to them, for `deflectd demo`.
//
// The agents are clients of the API as a real agent's browser is: they
// authenticate with bearer tokens, take the oldest chat of their teams'
// Unassigned (and lose some races for it with a 409), open it, answer it
// with the recommended first message, hand some chats to another team
// with the four required fields (and hand a few back: a ping-pong), leave
// a few seen and unanswered so that the policy has work, and resolve what
// they answered with a closing note and kind. The customers answer some
// replies and some write on their own, to be routed by keywords.
//
// Time runs Speed times faster than the wall clock, like the simulated
// contact center of ari/aritest/sim, and every random choice follows Seed.
package inboxsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deflectd/deflectd/inbox"
)

// Agent is one simulated agent: a user of the inbox's users file and the
// API token it authenticates with.
type Agent struct {
	ID, Token string
}

// Options configures a Sim.
type Options struct {
	// BaseURL is the inbox API, ending in /api/v1/inbox/.
	BaseURL string
	Agents  []Agent
	// Teams are the inbox's teams, where agents hand chats to.
	Teams []string
	// Customer makes a customer write to the business, as the fake
	// Cloud API's SendText does. Required.
	Customer func(ctx context.Context, from, text string) error
	// Speed is how many simulated seconds pass per real second. Default 1.
	Speed float64
	Seed  uint64
	// Poll is the simulated time between an agent's looks at its views.
	// Default 5 s.
	Poll time.Duration
	// ThinkTime is the mean (exponential) simulated time from opening a
	// message to answering it. Default 40 s.
	ThinkTime time.Duration
	// Capacity is how many chats an agent works at once. Default 3.
	Capacity int
	// IgnoreRate is the chance that an agent opens a customer's message
	// and leaves it: seen and unanswered.
	IgnoreRate float64
	// HandoffRate is the chance that an agent hands a chat it answered to
	// another team; BounceRate the chance that the receiver hands it back
	// (a ping-pong).
	HandoffRate, BounceRate float64
	// FollowUpRate is the chance that a customer answers an agent's reply
	// (at most twice per chat).
	FollowUpRate float64
	// DirectRate is the mean number of customers per simulated minute who
	// write on their own, without a call, during DirectFor (simulated).
	DirectRate float64
	DirectFor  time.Duration
	// HTTPClient defaults to one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the real clock. Default time.Now.
	Now func() time.Time
}

// Stats counts what the agents and customers did.
type Stats struct {
	// Claims are chats taken; Conflicts the claims lost to another agent
	// (409).
	Claims, Conflicts int
	// Replies are agent answers the outbox accepted; Handoffs and
	// Bounces (handoffs back) chats passed on; Ignored customer messages
	// left seen and unanswered; Resolved chats closed.
	Replies, Handoffs, Bounces, Ignored, Resolved int
	// FollowUps and Direct are customer messages: answers to an agent,
	// and first messages of customers who came on their own.
	FollowUps, Direct int
	// Errors are API calls that failed unexpectedly; LastError is the
	// latest.
	Errors    int
	LastError string
}

// Sim runs the simulated agents and customers. Create it with New and run
// it with Run.
type Sim struct {
	o Options

	mu     sync.Mutex
	rng    *rand.Rand
	stats  Stats
	busy   map[string]string // agent -> the work it plans to do, "" for none
	follow map[string]int    // conversation -> customer follow-ups sent
	outst  int               // customer messages planned, not yet sent
	direct bool              // direct customers still arriving
}

// New validates o and returns a Sim.
func New(o Options) (*Sim, error) {
	if o.BaseURL == "" || len(o.Agents) == 0 || o.Customer == nil {
		return nil, errors.New("inboxsim: BaseURL, Agents and Customer are required")
	}
	if !strings.HasSuffix(o.BaseURL, "/") {
		o.BaseURL += "/"
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.ThinkTime <= 0 {
		o.ThinkTime = 40 * time.Second
	}
	if o.Capacity <= 0 {
		o.Capacity = 3
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sim{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x1b0c)), busy: map[string]string{}, follow: map[string]int{},
		direct: o.DirectRate > 0 && o.DirectFor > 0}, nil
}

// Stats returns the counts so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Quiet reports whether the agents' work is done: no direct customers to
// come, no customer message planned, and no agent with a chat to take,
// answer or resolve (chats an agent chose to leave seen and unanswered do
// not count: the policy deals with them).
func (s *Sim) Quiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.direct || s.outst > 0 {
		return false
	}
	for _, b := range s.busy {
		if b != "" {
			return false
		}
	}
	return true
}

// Work describes what is left to do: each busy agent's chats, and the
// customer messages still to come.
func (s *Sim) Work() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, b := range s.busy {
		if b != "" {
			out = append(out, id+": "+b)
		}
	}
	slices.Sort(out)
	if s.outst > 0 {
		out = append(out, fmt.Sprintf("%d customer answers to come", s.outst))
	}
	if s.direct {
		out = append(out, "customers still writing on their own")
	}
	return strings.Join(out, "; ")
}

// Run sets the agents online and works the inbox until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, a := range s.o.Agents {
		s.mu.Lock()
		s.busy[a.ID] = "starting" // until its first look
		s.mu.Unlock()
		g.Go(func() error { s.agent(ctx, a); return nil })
	}
	if s.direct {
		g.Go(func() error { s.directCustomers(ctx); return nil })
	}
	return g.Wait()
}

// real converts simulated time to wall-clock time.
func (s *Sim) real(d time.Duration) time.Duration { return time.Duration(float64(d) / s.o.Speed) }

func (s *Sim) exp(mean time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func (s *Sim) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < p
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Sim) failed(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.count(func(st *Stats) { st.Errors++; st.LastError = err.Error() })
}

// sleep waits for d of simulated time, or until ctx ends.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(s.real(d))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// plan is what an agent means to do with one customer message: answer
// it at replyAt, or leave it (ignored).
type plan struct {
	ignored bool
	replyAt time.Time
	// answered: the reply is in; the chat stays pending until WhatsApp
	// accepts it.
	answered bool
}

// worker is one agent's state, owned by its goroutine.
type worker struct {
	Agent
	plans   map[string]*plan // by conversation/pending message
	resolve map[string]time.Time
	// left are chats this agent left unanswered: it does not take them
	// again when the policy puts them back.
	left map[string]bool
}

func (s *Sim) agent(ctx context.Context, a Agent) {
	w := &worker{Agent: a, plans: map[string]*plan{}, resolve: map[string]time.Time{}, left: map[string]bool{}}
	if err := s.call(ctx, w, "PUT", "availability", map[string]any{"status": inbox.Online}, nil); err != nil {
		s.failed(err)
	}
	for {
		work, err := s.look(ctx, w)
		if err != nil {
			s.failed(err)
			work = "retrying after an error"
		}
		s.mu.Lock()
		s.busy[a.ID] = work
		s.mu.Unlock()
		if !s.sleep(ctx, s.o.Poll) {
			return
		}
	}
}

// look is one pass over the agent's chats; it describes the work the
// agent still plans to do, "" for none.
func (s *Sim) look(ctx context.Context, w *worker) (string, error) {
	now := s.o.Now()
	var mine inbox.Page
	if err := s.call(ctx, w, "GET", "conversations?view=mine&limit=50", nil, &mine); err != nil {
		return "", err
	}
	var answer, sending, resolve, take int
	work := func() string {
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{answer, "to answer"}, {sending, "replies WhatsApp has not accepted yet"}, {resolve, "to resolve"}, {take, "to take"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		return strings.Join(parts, ", ")
	}
	for _, it := range mine.Items {
		c := it.Conversation
		if c.Status != inbox.StatusOpen || c.Owner != w.ID {
			continue
		}
		if !it.Pending {
			resolve++
			at, ok := w.resolve[c.ID]
			if !ok {
				at = now.Add(s.real(s.exp(s.o.ThinkTime)))
				w.resolve[c.ID] = at
			}
			if now.After(at) {
				delete(w.resolve, c.ID)
				if err := s.finish(ctx, w, c); err != nil {
					return work(), err
				}
			}
			continue
		}
		delete(w.resolve, c.ID)
		key := c.ID + "/" + c.PendingMsg
		p := w.plans[key]
		if p == nil {
			// Open the chat: the customer's messages turn read.
			err := s.call(ctx, w, "POST", "conversations/"+c.ID+"/seen", nil, nil)
			if moved(err) {
				continue
			}
			if err != nil {
				return work(), err
			}
			p = &plan{replyAt: now.Add(s.real(s.exp(s.o.ThinkTime)))}
			if s.chance(s.o.IgnoreRate) {
				p.ignored = true
				w.left[c.ID] = true
				s.count(func(st *Stats) { st.Ignored++ })
			}
			w.plans[key] = p
		}
		switch {
		case p.ignored:
		case p.answered:
			sending++
		case now.After(p.replyAt):
			sending++
			if err := s.answer(ctx, w, it, key); err != nil {
				return work(), err // the next look tries again, with the same client_id
			}
			p.answered = true
		default:
			answer++
		}
	}
	if answer+sending+resolve >= s.o.Capacity {
		return work(), nil
	}
	var un inbox.Page
	if err := s.call(ctx, w, "GET", "conversations?view=unassigned&limit=10", nil, &un); err != nil {
		return work(), err
	}
	for _, it := range un.Items {
		if w.left[it.ID] {
			continue
		}
		take++
		err := s.call(ctx, w, "POST", "conversations/"+it.ID+"/claim", nil, nil)
		var ae *apiError
		switch {
		case err == nil:
			s.count(func(st *Stats) { st.Claims++ })
			return work(), nil
		case errors.As(err, &ae) && ae.status == http.StatusConflict:
			s.count(func(st *Stats) { st.Conflicts++ })
		default:
			return work(), err
		}
	}
	return work(), nil
}

// answer replies to a pending chat: the recommended first message first,
// then a short answer; then a handoff, a customer's follow-up, or a
// resolve later.
func (s *Sim) answer(ctx context.Context, w *worker, it inbox.Item, key string) error {
	c := it.Conversation
	text := "Listo, ya lo revisé: queda resuelto en el sistema. ¿Necesitás algo más?"
	if c.FirstResponse.IsZero() {
		var qr struct {
			QuickReplies []inbox.RenderedReply `json:"quick_replies"`
		}
		if err := s.call(ctx, w, "GET", "conversations/"+c.ID+"/quick-replies", nil, &qr); err != nil {
			return err
		}
		for _, r := range qr.QuickReplies {
			if r.ID == "first" {
				text = r.Text
			}
		}
	}
	// The message being answered makes the reply idempotent: a retry of
	// this call does not send twice.
	sum := sha256.Sum256([]byte(key))
	err := s.call(ctx, w, "POST", "conversations/"+c.ID+"/reply", inbox.ReplyRequest{Text: text, ClientID: hex.EncodeToString(sum[:12])}, nil)
	if moved(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s.count(func(st *Stats) { st.Replies++ })
	if to := s.handoffTarget(c); to != "" {
		return s.handoff(ctx, w, c, to, false)
	}
	s.mu.Lock()
	n := s.follow[c.ID]
	follow := n < 2 && s.rng.Float64() < s.o.FollowUpRate
	if follow {
		s.follow[c.ID] = n + 1
		s.outst++
	}
	s.mu.Unlock()
	if follow {
		go s.followUp(ctx, c.Contact)
	}
	return nil
}

// handoff passes the chat to team with the four fields a handoff needs;
// a bounce sends it back where it came from.
func (s *Sim) handoff(ctx context.Context, w *worker, c *inbox.Conversation, team string, bounce bool) error {
	req := inbox.HandoffRequest{ToTeam: team, Reason: "El cliente pregunta por algo que resuelve " + team + ".",
		Priority: inbox.PriorityMedium, NextStep: "Confirmar el pedido y responderle por acá.", Tag: "derivado"}
	if bounce {
		req.Reason, req.Tag = "No es de nuestro equipo: lo devolvemos.", "devuelto"
	}
	err := s.call(ctx, w, "POST", "conversations/"+c.ID+"/handoff", req, nil)
	if moved(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s.count(func(st *Stats) {
		st.Handoffs++
		if bounce {
			st.Bounces++
		}
	})
	return nil
}

// handoffTarget picks where, if anywhere, an answered chat goes next.
func (s *Sim) handoffTarget(c *inbox.Conversation) string {
	if c.Handoffs > 0 || len(s.o.Teams) < 2 || !s.chance(s.o.HandoffRate) {
		return ""
	}
	var others []string
	for _, t := range s.o.Teams {
		if t != c.Team {
			others = append(others, t)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return others[s.rng.IntN(len(others))]
}

// finish ends the work on an answered chat: a chat just handed to this
// team is sometimes handed straight back (a ping-pong), else resolved.
func (s *Sim) finish(ctx context.Context, w *worker, c *inbox.Conversation) error {
	if h := c.LastHandoff; c.Handoffs == 1 && h != nil && h.ToTeam == c.Team && h.FromTeam != c.Team && s.chance(s.o.BounceRate) {
		return s.handoff(ctx, w, c, h.FromTeam, true)
	}
	return s.close(ctx, w, c)
}

func (s *Sim) close(ctx context.Context, w *worker, c *inbox.Conversation) error {
	req := inbox.ResolveRequest{Note: "Resuelto por WhatsApp; el cliente confirmó.", Kind: inbox.ClosingConfirmation}
	if s.chance(0.3) {
		req = inbox.ResolveRequest{Note: "Le enviamos los pasos a seguir.", Kind: inbox.ClosingNextStep}
	}
	err := s.call(ctx, w, "POST", "conversations/"+c.ID+"/resolve", req, nil)
	if moved(err) {
		return nil // the customer wrote meanwhile: the next look answers it
	}
	if err != nil {
		return err
	}
	s.count(func(st *Stats) { st.Resolved++ })
	return nil
}

var followUps = []string{"Gracias. ¿Y cuánto demora?", "Perfecto, ¿me confirmás el número de seguimiento?", "Dale, otra consulta: ¿puedo cambiar la dirección?"}

func (s *Sim) followUp(ctx context.Context, contact string) {
	defer func() {
		s.mu.Lock()
		s.outst--
		s.mu.Unlock()
	}()
	if !s.sleep(ctx, s.exp(30*time.Second)) {
		return
	}
	s.mu.Lock()
	text := followUps[s.rng.IntN(len(followUps))]
	s.mu.Unlock()
	if err := s.o.Customer(ctx, contact, text); err != nil {
		s.failed(fmt.Errorf("customer %s: %w", contact, err))
		return
	}
	s.count(func(st *Stats) { st.FollowUps++ })
}

var directTexts = []string{"Hola, no me llegó la factura de este mes", "Buenas, la app me da error al pagar",
	"Hola, quiero saber el estado de mi pedido", "Tengo un problema con el pago de la cuota", "Hola! el modem falla desde ayer"}

// directCustomers are customers who write without a call first.
func (s *Sim) directCustomers(ctx context.Context) {
	defer func() {
		s.mu.Lock()
		s.direct = false
		s.mu.Unlock()
	}()
	end := s.o.Now().Add(s.real(s.o.DirectFor))
	for {
		if !s.sleep(ctx, s.exp(time.Duration(float64(time.Minute)/s.o.DirectRate))) || s.o.Now().After(end) {
			return
		}
		s.mu.Lock()
		from := fmt.Sprintf("549116%07d", s.rng.IntN(10_000_000))
		text := directTexts[s.rng.IntN(len(directTexts))]
		s.mu.Unlock()
		if err := s.o.Customer(ctx, from, text); err != nil {
			s.failed(fmt.Errorf("customer %s: %w", from, err))
			continue
		}
		s.count(func(st *Stats) { st.Direct++ })
	}
}

// apiError is an API answer other than 2xx.
type apiError struct {
	status int
	method string
	path   string
	body   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, strings.TrimSpace(e.body))
}

// moved reports an answer that says the chat changed since the agent
// looked (another agent took it, the policy moved it, the customer
// wrote): the next look sees it as it is, so it is no failure.
func moved(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.status == http.StatusConflict || ae.status == http.StatusForbidden)
}

// call makes one API call as w and decodes a 2xx answer into out.
func (s *Sim) call(ctx context.Context, w *worker, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.o.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{status: resp.StatusCode, method: method, path: path, body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}
