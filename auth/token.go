package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Customer tokens. With a shop secret configured, a purchase must carry a
// token proving that the shop's login system vouched for its user_id until
// an expiry:
//
//	message = "flashsale-user-v1\n" + user_id + "\n" + decimal(expires)
//	token   = base64url_unpadded(HMAC-SHA256(secret, message))
//
// expires is in Unix seconds, written in decimal without sign, leading
// zeros or spaces; the token is 43 characters of [A-Za-z0-9_-]. A token is
// accepted while now <= expires and refused when expires lies more than
// MaxTokenLifetime ahead, so that a mistakenly long-lived token is never
// honoured.

// TokenVersion starts every signed message; a new format gets a new one.
const TokenVersion = "flashsale-user-v1"

// MinSecretLen is the shortest shop secret NewSigner accepts, in bytes.
const MinSecretLen = 16

// MaxTokenLifetime is how far ahead an expiry may lie: a token expiring
// later is refused as a bad token.
const MaxTokenLifetime = 30 * 24 * time.Hour

// ErrUnauthorized is what every token failure wraps.
var ErrUnauthorized = errors.New("unauthorized")

// Token failures. Their text is what the client is told.
var (
	ErrMissingToken = tokenError("missing token")
	ErrTokenExpired = tokenError("token expired")
	ErrBadToken     = tokenError("bad token")
)

// tokenError is a token failure: its text for the client, wrapping
// ErrUnauthorized.
type tokenError string

func (e tokenError) Error() string { return string(e) }
func (e tokenError) Unwrap() error { return ErrUnauthorized }

// ErrShortSecret is returned by NewSigner for a secret below MinSecretLen.
var ErrShortSecret = fmt.Errorf("the user secret must be at least %d bytes", MinSecretLen)

// Signer mints and verifies customer tokens with a shop secret. It is safe
// for concurrent use.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer keyed by a copy of secret.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	return &Signer{secret: append([]byte(nil), secret...)}, nil
}

// String keeps the secret out of logs and %v.
func (s *Signer) String() string { return "auth.Signer{secret:REDACTED}" }

// GoString keeps the secret out of %#v.
func (s *Signer) GoString() string { return s.String() }

// Mint returns the token for userID valid until expires (whole seconds;
// the fraction is dropped).
func (s *Signer) Mint(userID string, expires time.Time) string {
	return s.mint(userID, expires.Unix())
}

func (s *Signer) mint(userID string, expires int64) string {
	m := hmac.New(sha256.New, s.secret)
	msg := make([]byte, 0, len(TokenVersion)+len(userID)+22)
	msg = append(msg, TokenVersion+"\n"...)
	msg = append(msg, userID...)
	msg = append(msg, '\n')
	msg = strconv.AppendInt(msg, expires, 10)
	m.Write(msg)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks that token was minted for userID and expires, that expires
// is not before now (in Unix seconds), and that it lies at most
// MaxTokenLifetime after now. It returns nil, ErrMissingToken,
// ErrTokenExpired or ErrBadToken; the MAC is compared in constant time.
func (s *Signer) Verify(userID, token string, expires int64, now time.Time) error {
	if token == "" {
		return ErrMissingToken
	}
	if !hmac.Equal([]byte(token), []byte(s.mint(userID, expires))) {
		return ErrBadToken
	}
	t := now.Unix()
	if expires < t {
		return ErrTokenExpired
	}
	if expires-t > int64(MaxTokenLifetime/time.Second) {
		return ErrBadToken
	}
	return nil
}
