package auth_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/auth"
)

// The worked example of README.md "Customer tokens".
const (
	exampleSecret  = "shop-secret-0123456789"
	exampleUser    = "user_123"
	exampleExpires = 1764108000 // 2025-11-25T22:00:00Z
	exampleToken   = "siomnUz0AVMG1j9nomEvcCZ-qKEkayzlq8tHv1Edpns"
)

func newSigner(t testing.TB, secret string) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner([]byte(secret))
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func TestSignerWorkedExample(t *testing.T) {
	t.Parallel()
	s := newSigner(t, exampleSecret)
	if got := s.Mint(exampleUser, time.Unix(exampleExpires, 0)); got != exampleToken {
		t.Fatalf("Mint = %q, want %q (the README's example)", got, exampleToken)
	}
	// A fraction of a second does not change the token.
	if got := s.Mint(exampleUser, time.Unix(exampleExpires, 999_999_999)); got != exampleToken {
		t.Errorf("Mint with nanoseconds = %q, want %q", got, exampleToken)
	}
	now := time.Unix(exampleExpires, 0).Add(-time.Hour)
	if err := s.Verify(exampleUser, exampleToken, exampleExpires, now); err != nil {
		t.Errorf("Verify(example) = %v", err)
	}
	// Only the unpadded base64url form is accepted.
	for _, tok := range []string{strings.ReplaceAll(exampleToken, "-", "+"), exampleToken + "="} {
		if err := s.Verify(exampleUser, tok, exampleExpires, now); err != auth.ErrBadToken {
			t.Errorf("Verify(%q) = %v, want ErrBadToken", tok, err)
		}
	}
}

func TestSignerVerify(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "0123456789abcdef")
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	good := s.Mint("user_1", exp)
	if len(good) != 43 || strings.ContainsAny(good, "+/=") {
		t.Fatalf("token %q is not 43 characters of unpadded base64url", good)
	}
	flip := []byte(good)
	flip[10] ^= 'A' ^ 'B'
	if flip[10] == good[10] {
		t.Fatal("tamper did not change the token")
	}
	other := newSigner(t, "0123456789abcdeF")
	tooFar := now.Add(auth.MaxTokenLifetime + time.Second)
	justFar := now.Add(auth.MaxTokenLifetime)
	for _, tt := range []struct {
		name    string
		user    string
		token   string
		expires int64
		now     time.Time
		want    error
	}{
		{"good", "user_1", good, exp.Unix(), now, nil},
		{"last second", "user_1", good, exp.Unix(), exp, nil},
		{"at the lifetime limit", "user_1", s.Mint("user_1", justFar), justFar.Unix(), now, nil},
		{"missing", "user_1", "", exp.Unix(), now, auth.ErrMissingToken},
		{"missing and no expiry", "user_1", "", 0, now, auth.ErrMissingToken},
		{"wrong user", "user_2", good, exp.Unix(), now, auth.ErrBadToken},
		{"user prefix", "user_", good, exp.Unix(), now, auth.ErrBadToken},
		{"wrong expiry", "user_1", good, exp.Unix() + 1, now, auth.ErrBadToken},
		{"no expiry", "user_1", good, 0, now, auth.ErrBadToken},
		{"tampered", "user_1", string(flip), exp.Unix(), now, auth.ErrBadToken},
		{"truncated", "user_1", good[:42], exp.Unix(), now, auth.ErrBadToken},
		{"padded", "user_1", good + "=", exp.Unix(), now, auth.ErrBadToken},
		{"other secret", "user_1", other.Mint("user_1", exp), exp.Unix(), now, auth.ErrBadToken},
		{"expired", "user_1", good, exp.Unix(), exp.Add(time.Second), auth.ErrTokenExpired},
		{"too far ahead", "user_1", s.Mint("user_1", tooFar), tooFar.Unix(), now, auth.ErrBadToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Verify(tt.user, tt.token, tt.expires, tt.now)
			if err != tt.want {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !errors.Is(err, auth.ErrUnauthorized) {
				t.Errorf("%v does not wrap ErrUnauthorized", err)
			}
		})
	}
	for err, text := range map[error]string{auth.ErrMissingToken: "missing token", auth.ErrTokenExpired: "token expired", auth.ErrBadToken: "bad token"} {
		if err.Error() != text {
			t.Errorf("%v: text %q, want %q", err, err.Error(), text)
		}
	}
}

func TestNewSignerShortSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"", "x", "0123456789abcde"} {
		if s, err := auth.NewSigner([]byte(secret)); !errors.Is(err, auth.ErrShortSecret) || s != nil {
			t.Errorf("NewSigner(%d bytes) = %v, %v; want ErrShortSecret", len(secret), s, err)
		}
	}
	secret := []byte("0123456789abcdef")
	s, err := auth.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Mint("u", time.Unix(100, 0))
	secret[0] ^= 1 // the Signer keeps its own copy
	if s.Mint("u", time.Unix(100, 0)) != tok {
		t.Error("changing the caller's secret changed the Signer's")
	}
	checkRedacted(t, s)
}

// checkRedacted checks that v, printed every way, does not show a test
// secret (all of them contain "0123456789").
func checkRedacted(t *testing.T, v any) {
	t.Helper()
	for _, text := range []string{fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v)} {
		if strings.Contains(text, "0123456789") {
			t.Errorf("the secret shows in %q", text)
		}
	}
}
