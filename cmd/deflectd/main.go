// Command deflectd is the IVR-to-WhatsApp deflection bridge that runs next
// to Asterisk.
//
// Subcommands:
//
//	deflectd run -config deflectd.yaml            run the bridge
//	deflectd check-config -config deflectd.yaml   check the config, rules and templates
//	deflectd fake-cloud-api                       a fake WhatsApp Cloud API, for trials without Meta
//	deflectd ari-check                            connect to ARI as the bridge would, and report
//	deflectd demo                                 the bridge against a simulated contact center
//	deflectd inbox-user hash-password|new-token   make a users file's password hash or API token
//	deflectd version                              print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // rules name time zones; hosts without zoneinfo still load them

	"github.com/deflectd/deflectd/ari"
	"go.uber.org/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "deflectd", version)
		return 0
	case "ari-check":
		return ariCheck(ctx, args[1:], stdout, stderr)
	case "run":
		return runBridge(ctx, args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "fake-cloud-api":
		return fakeCloudAPI(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "inbox-user":
		return inboxUser(args[1:], os.Stdin, stdout, stderr)
	case "report":
		return reportCmd(args[1:], os.Stdin, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "deflectd: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: deflectd <command> [flags]

commands:
  run           run the bridge (-config deflectd.yaml; SIGHUP reloads rules and templates)
  check-config  check the configuration, the rules and the templates, and exit
  fake-cloud-api  serve a fake WhatsApp Cloud API for a trial without a Meta account
  ari-check     connect to Asterisk's ARI as the bridge would and report what it finds
  demo          run the bridge against a simulated contact center (no Asterisk, Redis or Meta needed)
  report        contact-center KPIs from Asterisk's queue_log, deflections told from abandons
  inbox-user    hash-password (reads it on stdin) or new-token: lines for the inbox's users file
  version       print the version

Run "deflectd <command> -h" for a command's flags.
`)
}

// ariFlags are the ARI connection settings every command that talks to
// Asterisk shares. The password comes from the environment or a file, never
// from a flag, so it stays out of process listings.
type ariFlags struct {
	url, user, passwordFile, app string
}

func (f *ariFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "ari-url", envOr("DEFLECTD_ARI_URL", "http://127.0.0.1:8088/ari"), "ARI base URL (env DEFLECTD_ARI_URL)")
	fs.StringVar(&f.user, "ari-user", envOr("DEFLECTD_ARI_USER", "deflectd"), "ARI user of ari.conf (env DEFLECTD_ARI_USER)")
	fs.StringVar(&f.passwordFile, "ari-password-file", os.Getenv("DEFLECTD_ARI_PASSWORD_FILE"), "file holding the ARI password (env DEFLECTD_ARI_PASSWORD_FILE; or set DEFLECTD_ARI_PASSWORD)")
	fs.StringVar(&f.app, "ari-app", envOr("DEFLECTD_ARI_APP", "deflect"), "Stasis application name used in the dialplan (env DEFLECTD_ARI_APP)")
}

func (f *ariFlags) options(log *zap.Logger) (ari.Options, error) {
	pw := os.Getenv("DEFLECTD_ARI_PASSWORD")
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return ari.Options{}, fmt.Errorf("reading the ARI password: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	if pw == "" {
		return ari.Options{}, errors.New("no ARI password: set DEFLECTD_ARI_PASSWORD or -ari-password-file")
	}
	return ari.Options{URL: f.url, Username: f.user, Password: pw, Application: f.app, Logger: log.Named("ari")}, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ariCheck connects the way the bridge does (REST, then the event
// websocket for the application) and prints what an operator needs to know
// when setting up: the Asterisk version, and the calls already waiting in
// the application.
func ariCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ari-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af ariFlags
	af.register(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts, err := af.options(zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, "deflectd ari-check:", err)
		return 2
	}
	c, err := ari.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd ari-check:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	info, err := c.Info(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd ari-check: REST:", err)
		return 1
	}
	fmt.Fprintf(stdout, "asterisk %s (up since %s)\n", info.System.Version, info.Status.StartupTime.Format(time.RFC3339))

	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stopRun(); <-done }()
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			// Run has ended; err is why (bad credentials, say).
			fmt.Fprintln(stderr, "deflectd ari-check: events:", err)
			return 1
		}
		switch ev := ev.(type) {
		case *ari.Connected:
			snap, err := c.Snapshot(ctx)
			if err != nil {
				fmt.Fprintln(stderr, "deflectd ari-check: listing the application:", err)
				return 1
			}
			fmt.Fprintf(stdout, "application %q registered; %d channel(s) in it\n", opts.Application, len(snap.Channels))
			for _, ch := range snap.Channels {
				fmt.Fprintf(stdout, "  %s %s %s caller=%s\n", ch.ID, ch.Name, ch.State, ch.Caller.Number)
			}
			return 0
		case *ari.Disconnected:
			fmt.Fprintln(stderr, "deflectd ari-check: events:", ev.Err)
			return 1
		}
	}
}

// runBridge runs deflectd until SIGINT or SIGTERM; SIGHUP reloads the rules
// and templates (a broken file keeps the old ones).
func runBridge(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", envOr("DEFLECTD_CONFIG", "deflectd.yaml"), "configuration file (env DEFLECTD_CONFIG)")
	logFormat := fs.String("log-format", "json", "log format: json or console")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd run:", err)
		return 2
	}
	defer log.Sync()
	app, err := NewApp(AppOptions{ConfigFile: *configFile, Logger: log, Getenv: os.Getenv})
	if err != nil {
		log.Error("deflectd cannot start", zap.Error(err))
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				app.Reload() // logs its own outcome
			}
		}
	}()
	if err := app.Run(ctx); err != nil {
		log.Error("deflectd stopped", zap.Error(err))
		return 1
	}
	return 0
}

func newLogger(format, level string) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("-log-format %q: want json or console", format)
	}
	cfg.Level = lvl
	return cfg.Build()
}

// checkConfig loads everything run would load (secrets excepted) and says
// what is wrong, for operators and CI before a deploy or a reload.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", envOr("DEFLECTD_CONFIG", "deflectd.yaml"), "configuration file (env DEFLECTD_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd check-config:", err)
		return 1
	}
	rs, cat, err := loadRulesAndTemplates(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd check-config:", err)
		return 1
	}
	msg := fmt.Sprintf("%s: ok (%d routes, %d templates", *configFile, len(rs.Routes()), len(cat.Templates()))
	if cfg.Inbox != nil {
		users, err := cfg.loadUsers()
		if err != nil {
			fmt.Fprintln(stderr, "deflectd check-config:", err)
			return 1
		}
		msg += fmt.Sprintf("; inbox: %d teams, %d users", len(cfg.Inbox.Teams), len(users.Users()))
	}
	fmt.Fprintln(stdout, msg+")")
	return 0
}
