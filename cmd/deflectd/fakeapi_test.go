package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/whatsapp"
)

// The fake Cloud API as a process of its own accepts what the real client
// sends, with the catalog's templates.
func TestFakeCloudAPICommand(t *testing.T) {
	t.Setenv("DEFLECTD_WA_TOKEN", "trial-token")
	t.Setenv("DEFLECTD_WA_APP_SECRET", "trial-secret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- fakeCloudAPI(ctx, []string{"-listen", addr, "-templates", "../../configs/deflectd/templates.yaml",
			"-phone-number-id", "123", "-webhook", "http://127.0.0.1:1/webhook"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n') // the banner: it listens
	if err != nil || !strings.Contains(line, "fake WhatsApp Cloud API") {
		t.Fatalf("banner = %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)

	cat, err := whatsapp.LoadCatalogFile("../../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := cat.Render("queue_deflect_v1", "es_AR", "5491155551234", whatsapp.CallContext{
		CallID: "c1", Queue: "sales", MenuOption: "2", Reason: "billing", Key: "c1:offer"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: "http://" + addr, PhoneNumberID: "123", Token: "trial-token"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx, m)
	if err != nil || !strings.HasPrefix(res.WAMID(), "wamid.") {
		t.Fatalf("Send() = %v, %v; want a wamid", res, err)
	}
	bad, _ := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: "http://" + addr, PhoneNumberID: "123", Token: "wrong"})
	if _, err := bad.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "190") {
		t.Errorf("Send(wrong token) = %v, want code 190", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("fake-cloud-api exited %d, want 0", code)
	}
}
