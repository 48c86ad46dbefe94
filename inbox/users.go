package inbox

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do. Agents work the Unassigned of their teams
// and their own chats; supervisors see everything and reassign.
type Role string

// Roles.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
)

// User is an agent or a supervisor.
type User struct {
	ID    string   `yaml:"id" json:"id"`
	Name  string   `yaml:"name" json:"name"`
	Role  Role     `yaml:"role" json:"role"`
	Teams []string `yaml:"teams" json:"teams"`
	// PasswordHash is a bcrypt hash ("$2a$..."/"$2b$...") or an argon2id
	// hash in PHC form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
	// deflectd inbox-user hash-password makes one. Empty: no login.
	PasswordHash string `yaml:"password_hash" json:"-"`
	// Tokens are API bearer tokens, as "sha256:" and the hex SHA-256 of
	// the token, so that the file never holds a usable secret.
	Tokens []string `yaml:"tokens" json:"-"`
}

// Supervisor reports whether u is a supervisor.
func (u *User) Supervisor() bool { return u.Role == RoleSupervisor }

// InTeam reports whether u belongs to team.
func (u *User) InTeam(team string) bool { return slices.Contains(u.Teams, team) }

// Directory is the users file: every agent and supervisor.
type Directory struct {
	users []*User
	byID  map[string]*User
	// tokens maps the SHA-256 of a token to its user.
	tokens map[[32]byte]*User
	// dummy is a hash compared against when the user is unknown, so that
	// a login takes as long for a made-up name as for a real one.
	dummy func() []byte
}

// maxUsersFile bounds the users file; a contact center's staff list is a
// few hundred lines.
const maxUsersFile = 4 << 20

// LoadUsers reads a users file.
func LoadUsers(path string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inbox: users file: %w", err)
	}
	d, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseUsers reads a users file's YAML strictly: unknown keys, duplicate
// ids, unknown roles, malformed hashes and tokens are errors naming the
// entry.
//
//	users:
//	  - id: ana
//	    name: Ana Pérez
//	    role: agent
//	    teams: [billing]
//	    password_hash: "$2a$10$..."
//	    tokens: ["sha256:3f2a..."]
func ParseUsers(data []byte) (*Directory, error) {
	if len(data) > maxUsersFile {
		return nil, fmt.Errorf("users file: %d bytes, more than %d", len(data), maxUsersFile)
	}
	var f struct {
		Users []*User `yaml:"users"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	d := &Directory{byID: map[string]*User{}, tokens: map[[32]byte]*User{}, dummy: sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
		return h
	})}
	var errs []error
	for i, u := range f.Users {
		at := fmt.Sprintf("users[%d]", i)
		if u == nil {
			errs = append(errs, fmt.Errorf("%s: empty entry", at))
			continue
		}
		if !validName(u.ID) {
			errs = append(errs, fmt.Errorf("%s.id: %q: want letters, digits, '-', '_' or '.'", at, u.ID))
		} else if d.byID[u.ID] != nil {
			errs = append(errs, fmt.Errorf("%s.id: %q is listed twice", at, u.ID))
		}
		if u.Role != RoleAgent && u.Role != RoleSupervisor {
			errs = append(errs, fmt.Errorf("%s.role: %q: want agent or supervisor", at, u.Role))
		}
		if u.Role == RoleAgent && len(u.Teams) == 0 {
			errs = append(errs, fmt.Errorf("%s.teams: an agent needs at least one team", at))
		}
		if u.PasswordHash != "" {
			if err := checkHashFormat(u.PasswordHash); err != nil {
				errs = append(errs, fmt.Errorf("%s.password_hash: %w", at, err))
			}
		}
		for j, t := range u.Tokens {
			sum, err := parseTokenHash(t)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.tokens[%d]: %w", at, j, err))
				continue
			}
			if d.tokens[sum] != nil {
				errs = append(errs, fmt.Errorf("%s.tokens[%d]: the same token is given twice", at, j))
				continue
			}
			d.tokens[sum] = u
		}
		if u.Name == "" {
			u.Name = u.ID
		}
		if validName(u.ID) && d.byID[u.ID] == nil {
			d.byID[u.ID] = u
		}
		d.users = append(d.users, u)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// CheckTeams reports users whose teams the config does not define.
func (d *Directory) CheckTeams(teams []string) error {
	var errs []error
	for i, u := range d.users {
		for j, t := range u.Teams {
			if !slices.Contains(teams, t) {
				errs = append(errs, fmt.Errorf("users[%d].teams[%d]: %q is not a team of the inbox config", i, j, t))
			}
		}
	}
	return errors.Join(errs...)
}

// Users returns every user in file order.
func (d *Directory) Users() []*User { return d.users }

// User returns the user with that id.
func (d *Directory) User(id string) (*User, bool) {
	u, ok := d.byID[id]
	return u, ok
}

// TeamMembers returns the agents and supervisors of team.
func (d *Directory) TeamMembers(team string) []*User {
	var out []*User
	for _, u := range d.users {
		if u.InTeam(team) {
			out = append(out, u)
		}
	}
	return out
}

// Supervisors returns the supervisors, who are notified of escalations:
// those of team first, or every supervisor when the team has none.
func (d *Directory) Supervisors(team string) []string {
	var own, all []string
	for _, u := range d.users {
		if !u.Supervisor() {
			continue
		}
		all = append(all, u.ID)
		if u.InTeam(team) {
			own = append(own, u.ID)
		}
	}
	if len(own) > 0 {
		return own
	}
	return all
}

// ErrBadCredentials is returned for an unknown user, a wrong password or an
// unknown token, without saying which.
var ErrBadCredentials = errors.New("inbox: bad credentials")

// Authenticate checks a user's password.
func (d *Directory) Authenticate(id, password string) (*User, error) {
	u, ok := d.byID[id]
	if !ok || u.PasswordHash == "" {
		_ = bcrypt.CompareHashAndPassword(d.dummy(), []byte(password))
		return nil, ErrBadCredentials
	}
	if !CheckPassword(u.PasswordHash, password) {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// TokenUser returns the user a bearer token belongs to.
func (d *Directory) TokenUser(token string) (*User, error) {
	if token == "" {
		return nil, ErrBadCredentials
	}
	if u := d.tokens[sha256.Sum256([]byte(token))]; u != nil {
		return u, nil
	}
	return nil, ErrBadCredentials
}

// HashToken returns the users-file form of a bearer token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// HashPassword returns a bcrypt hash for the users file.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("inbox: a password needs at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("inbox: hashing: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether password matches a bcrypt or argon2id
// hash.
func CheckPassword(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, err := parseArgon2(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(got, p.key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

func checkHashFormat(hash string) error {
	if strings.HasPrefix(hash, "$argon2id$") {
		_, err := parseArgon2(hash)
		return err
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("not a bcrypt or argon2id hash: %w", err)
	}
	return nil
}

type argon2Params struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

// parseArgon2 reads "$argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>" with
// unpadded base64, the PHC string format.
func parseArgon2(s string) (*argon2Params, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return nil, errors.New(`argon2id hash: want "$argon2id$v=19$m=…,t=…,p=…$salt$hash"`)
	}
	p := &argon2Params{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("argon2id hash: parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("argon2id hash: p=%d", n)
			}
			p.threads = uint8(n)
		default:
			return nil, fmt.Errorf("argon2id hash: unknown parameter %q", k)
		}
	}
	if p.memory < 8 || p.memory > 4<<20 || p.time < 1 || p.time > 64 || p.threads < 1 {
		return nil, errors.New("argon2id hash: parameters out of range")
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return nil, errors.New("argon2id hash: bad salt")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 128 {
		return nil, errors.New("argon2id hash: bad hash")
	}
	return p, nil
}

func parseTokenHash(s string) ([32]byte, error) {
	var sum [32]byte
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return sum, errors.New(`want "sha256:" and the token's hex SHA-256 (deflectd inbox-user new-token makes one)`)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return sum, errors.New("want 64 hex digits after sha256:")
	}
	copy(sum[:], b)
	return sum, nil
}
