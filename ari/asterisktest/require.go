package asterisktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RequireDepsEnv is the environment variable that turns missing
// dependencies into test failures: with DEFLECTD_REQUIRE_DEPS=1 (as CI sets
// it) a missing dependency fails the test; otherwise the test is skipped.
const RequireDepsEnv = "DEFLECTD_REQUIRE_DEPS"

// DepsRequired reports whether DEFLECTD_REQUIRE_DEPS=1 is set.
func DepsRequired() bool { return os.Getenv(RequireDepsEnv) == "1" }

// Check reports which of the named dependencies are missing, nil if none.
// Known names:
//
//	"root"        running as uid 0 (chroot needs it)
//	"sipp"        the sipp binary (Debian package sip-tester)
//	"timeout"     coreutils timeout, which wraps every sipp
//	"chroot"      the chroot binary
//	"curl"        used by scripts/asterisk-sandbox to probe ARI
//	"debootstrap" debootstrap, unless the sandbox chroot is already built
//	"sandbox"     everything Start needs: root, chroot, curl, debootstrap
//
// An unknown name is reported as an error too.
func Check(what ...string) error {
	var missing []string
	for _, w := range what {
		if err := check1(w); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		return errors.New(strings.Join(missing, "; "))
	}
	return nil
}

func check1(what string) error {
	switch what {
	case "root":
		if os.Geteuid() != 0 {
			return errors.New("not running as root (the Asterisk sandbox needs chroot)")
		}
	case "sipp":
		if !haveTool("sipp") {
			return errors.New("sipp not found (apt-get install sip-tester, or scripts/asterisk-sandbox deps)")
		}
	case "timeout", "chroot", "curl":
		if !haveTool(what) {
			return fmt.Errorf("%s not found", what)
		}
	case "nft":
		if !haveTool("nft") {
			return errors.New("nft not found (apt-get install nftables)")
		}
	case "debootstrap":
		if _, err := os.Stat(filepath.Join(SandboxDir(), buildMarker)); err == nil {
			return nil // already built: debootstrap is not needed
		}
		if !haveTool("debootstrap") {
			return errors.New("debootstrap not found and the sandbox is not built (scripts/asterisk-sandbox deps)")
		}
	case "sandbox":
		return Check("root", "chroot", "curl", "debootstrap")
	default:
		return fmt.Errorf("asterisktest: unknown dependency %q", what)
	}
	return nil
}

// haveTool looks in PATH and in the sbin directories, which a non-login
// root shell may lack in PATH.
func haveTool(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Require skips (or, with DEFLECTD_REQUIRE_DEPS=1, fails) the test when any
// of the named dependencies is missing; see [Check] for the names.
func Require(tb testing.TB, what ...string) {
	tb.Helper()
	for _, w := range what {
		if err := check1(w); err != nil {
			if strings.HasPrefix(err.Error(), "asterisktest: unknown dependency") {
				tb.Fatal(err)
			}
			SkipOrFail(tb, "missing dependency: %v", err)
		}
	}
}

// SkipOrFail applies the dependency policy to a reason that is not a
// programming error, such as a sandbox that could not be built or started:
// it calls tb.Fatalf when DEFLECTD_REQUIRE_DEPS=1 and tb.Skipf otherwise.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if DepsRequired() {
		tb.Fatalf(format+" ("+RequireDepsEnv+"=1)", args...)
	}
	tb.Skipf(format+" (set "+RequireDepsEnv+"=1 to make this a failure)", args...)
}
