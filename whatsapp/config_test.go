package whatsapp

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEFLECTD_WA_TOKEN": "from-env", "DEFLECTD_WA_APP_SECRET": "s3cret", "DEFLECTD_WA_VERIFY_TOKEN": "v"}
	getenv := func(k string) string { return env[k] }

	s, err := Config{PhoneNumberID: "1", TokenFile: tokenFile}.LoadSecrets(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if s.Token.Reveal() != "from-file" || s.AppSecret.Reveal() != "s3cret" {
		t.Errorf("LoadSecrets() = %q, %q; want the file's token and the env's secret", s.Token.Reveal(), s.AppSecret.Reveal())
	}

	// Secrets never print, whatever way they are logged.
	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("config", zap.Any("secrets", s), zap.Stringer("token", s.Token))
	j, _ := json.Marshal(s)
	out := fmt.Sprintf("%v %+v %#v %s %v", s, s, s, j, logs.All()[0].ContextMap())
	for _, leaked := range []string{"from-file", "s3cret"} {
		if strings.Contains(out, leaked) {
			t.Errorf("a secret leaked: %s", out)
		}
	}

	if _, err := (Config{}).LoadSecrets(func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "DEFLECTD_WA_TOKEN") || !strings.Contains(err.Error(), "DEFLECTD_WA_APP_SECRET") {
		t.Errorf("LoadSecrets(nothing) = %v, want errors naming each variable", err)
	}
	if _, err := (Config{TokenFile: filepath.Join(dir, "missing")}).LoadSecrets(getenv); err == nil {
		t.Error("LoadSecrets(missing file) = nil, want an error")
	}
}
