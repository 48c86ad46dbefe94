package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// fakeCloudAPI serves whatsapp/whatsapptest as a process of its own, so a
// team without a Meta account can try deflectd end to end (docker-compose
// runs it next to the bridge): it validates sends like the real API,
// answers with wamids, sends signed status webhooks, and has simulated
// customers reply to a share of the templates.
func fakeCloudAPI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fake-cloud-api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8099", "address to serve the fake Graph API on")
	templates := fs.String("templates", "configs/deflectd/templates.yaml", "template catalog: the templates the fake approves")
	phone := fs.String("phone-number-id", "000000000000000", "the business number's id, as in deflectd.yaml")
	webhook := fs.String("webhook", "http://127.0.0.1:9102/webhook", "where to send signed webhooks (deflectd's /webhook)")
	replyRate := fs.Float64("reply-rate", 0.5, "share of template messages a simulated customer answers")
	mps := fs.Int("mps", 80, "throughput limit, messages per second (130429 beyond)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, secret := envOr("DEFLECTD_WA_TOKEN", ""), envOr("DEFLECTD_WA_APP_SECRET", "")
	if token == "" || secret == "" {
		fmt.Fprintln(stderr, "deflectd fake-cloud-api: set DEFLECTD_WA_TOKEN and DEFLECTD_WA_APP_SECRET (the same values deflectd uses)")
		return 2
	}
	cat, err := whatsapp.LoadCatalogFile(*templates)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd fake-cloud-api:", err)
		return 1
	}
	fake := whatsapptest.New(whatsapptest.Options{
		Token: token, AppSecret: secret, MPS: *mps, WebhookURL: *webhook,
		PhoneNumbers:   []whatsapptest.PhoneNumber{{ID: *phone, DisplayPhoneNumber: "15550000000"}},
		Templates:      whatsapptest.TemplatesFromCatalog(cat),
		AutoStatus:     &whatsapptest.AutoStatus{Interval: time.Second},
		Customers:      &whatsapptest.Customers{ReplyRate: *replyRate, TapRate: 0.5, Delay: 5 * time.Second},
		WebhookRetries: 3, WebhookRetryInterval: 2 * time.Second,
	})
	defer fake.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd fake-cloud-api:", err)
		return 1
	}
	srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "fake WhatsApp Cloud API on http://%s (phone number id %s, %d templates), webhooks to %s\n",
		ln.Addr(), *phone, len(cat.Templates()), *webhook)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "deflectd fake-cloud-api:", err)
		return 1
	}
	return 0
}
