package inbox_test

import (
	"os"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/inbox"
)

// FuzzParseUsers feeds arbitrary users files to the parser: it never
// panics, and a file it accepts holds only users the rest of the inbox can
// rely on (a valid id found by User, a known role, agents with teams,
// tokens that resolve to their user).
func FuzzParseUsers(f *testing.F) {
	if b, err := os.ReadFile("../configs/deflectd/users.yaml"); err == nil {
		f.Add(string(b))
	}
	f.Add("users:\n  - {id: ana, role: agent, teams: [billing], tokens: [\"" + inbox.HashToken("t") + "\"]}\n")
	f.Add("users:\n  - {id: sue, role: supervisor, password_hash: \"$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"}\n")
	f.Add("users:\n  - {id: ana, role: agent}\n  - {id: ana, role: boss}\n")
	f.Add("users: [null]\n")
	f.Add("users:\n  - {id: x, role: agent, teams: [a], colour: red}\n")
	f.Fuzz(func(t *testing.T, file string) {
		d, err := inbox.ParseUsers([]byte(file))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		seen := map[string]bool{}
		for _, u := range d.Users() {
			if u.ID == "" || strings.ContainsAny(u.ID, " /:\n") || seen[u.ID] {
				t.Fatalf("accepted user id %q", u.ID)
			}
			seen[u.ID] = true
			if got, ok := d.User(u.ID); !ok || got != u {
				t.Fatalf("User(%q) does not find the user", u.ID)
			}
			if u.Role != inbox.RoleAgent && u.Role != inbox.RoleSupervisor {
				t.Fatalf("accepted role %q", u.Role)
			}
			if u.Role == inbox.RoleAgent && len(u.Teams) == 0 {
				t.Fatalf("accepted agent %q without a team", u.ID)
			}
			if u.Name == "" {
				t.Fatalf("user %q has no display name", u.ID)
			}
		}
		if _, err := d.TokenUser(""); err == nil {
			t.Fatal("the empty token is accepted")
		}
	})
}
