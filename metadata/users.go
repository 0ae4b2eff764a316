package metadata

// SCRAM credentials: what a SASL/SCRAM (or PLAIN) login is checked
// against. Only the salted, iterated form is kept (RFC 5802: salt,
// iterations, StoredKey, ServerKey), never a password; they are journal
// entries like every other change, so every agent checks logins the same
// way and an agent that starts later replays them.

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"maps"
	"unicode/utf8"
)

// SCRAM mechanisms, as Kafka names them.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Iteration bounds Kafka enforces for SCRAM credentials.
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// ScramCredential is one user's credential for one mechanism.
type ScramCredential struct {
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// ScramKeyLen is the length of StoredKey and ServerKey for mechanism, or 0
// if it is not a SCRAM mechanism tlog serves.
func ScramKeyLen(mechanism string) int {
	switch mechanism {
	case ScramSHA256:
		return sha256.Size
	case ScramSHA512:
		return sha512.Size
	}
	return 0
}

// SetScramCredential creates or replaces user's credential for a mechanism.
type SetScramCredential struct {
	User       string          `json:"user"`
	Mechanism  string          `json:"mechanism"`
	Credential ScramCredential `json:"credential"`
}

// DeleteScramCredential removes user's credential for a mechanism (the
// user goes when its last credential does).
type DeleteScramCredential struct {
	User      string `json:"user"`
	Mechanism string `json:"mechanism"`
}

func (SetScramCredential) CommandType() string    { return "set_scram_credential" }
func (DeleteScramCredential) CommandType() string { return "delete_scram_credential" }

// maxUserName bounds a user name (Kafka has no bound; the journal should).
const maxUserName = 1024

func checkUser(user string) error {
	if user == "" || len(user) > maxUserName || !utf8.ValidString(user) {
		return fmt.Errorf("%w: user name must be 1 to %d bytes of UTF-8", ErrInvalidCommand, maxUserName)
	}
	if user == "ANONYMOUS" {
		return fmt.Errorf("%w: ANONYMOUS is the principal of unauthenticated connections", ErrInvalidCommand)
	}
	return nil
}

func (c SetScramCredential) apply(tx *txn) error {
	fail := func(err error) error { return fmt.Errorf("set %s credential of %q: %w", c.Mechanism, c.User, err) }
	if err := checkUser(c.User); err != nil {
		return fail(err)
	}
	n := ScramKeyLen(c.Mechanism)
	switch cr := c.Credential; {
	case n == 0:
		return fail(fmt.Errorf("%w: unknown mechanism", ErrInvalidCommand))
	case cr.Iterations < MinScramIterations || cr.Iterations > MaxScramIterations:
		return fail(fmt.Errorf("%w: iterations must be %d to %d", ErrInvalidCommand, MinScramIterations, MaxScramIterations))
	case len(cr.Salt) < 16 || len(cr.Salt) > 1024:
		return fail(fmt.Errorf("%w: salt must be 16 to 1024 bytes", ErrInvalidCommand))
	case len(cr.StoredKey) != n || len(cr.ServerKey) != n:
		return fail(fmt.Errorf("%w: keys must be %d bytes", ErrInvalidCommand, n))
	}
	users := tx.users()
	creds := maps.Clone(users[c.User])
	if creds == nil {
		creds = map[string]ScramCredential{}
	}
	creds[c.Mechanism] = c.Credential
	users[c.User] = creds
	return nil
}

func (c DeleteScramCredential) apply(tx *txn) error {
	if _, ok := tx.s.Users[c.User][c.Mechanism]; !ok {
		return fmt.Errorf("delete %s credential of %q: %w", c.Mechanism, c.User, ErrUnknownUser)
	}
	users := tx.users()
	rest := maps.Clone(users[c.User])
	delete(rest, c.Mechanism)
	if len(rest) == 0 {
		delete(users, c.User)
	} else {
		users[c.User] = rest
	}
	return nil
}

// ScramCredentialOf returns user's credential for mechanism.
func (s *State) ScramCredentialOf(user, mechanism string) (ScramCredential, bool) {
	c, ok := s.Users[user][mechanism]
	return c, ok
}
