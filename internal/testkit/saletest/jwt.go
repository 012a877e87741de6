package saletest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// The shop's JWT issuer and audience, the ones Claims writes.
const (
	JWTIssuer   = "https://shop.example"
	JWTAudience = "flashsale"
)

// The shop's HS256 secret (32 bytes) and the time its test tokens are
// checked at.
var (
	JWTSecret = []byte("0123456789abcdef0123456789abcdef")
	JWTNow    = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
)

// Claims are a valid customer token's claims at now for sub (issued by
// JWTIssuer for JWTAudience, expiring an hour later), changed by edits (a
// nil value deletes the claim).
func Claims(sub string, now time.Time, edits map[string]any) map[string]any {
	c := map[string]any{
		"sub": sub, "iss": JWTIssuer, "aud": JWTAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// JWT mints a compact JSON Web Token by hand, without any JWT library, so
// that the verifier under test is checked against RFC 7515 and 7518
// themselves. header["alg"] picks the signature: HS256 with a []byte key,
// RS256 with an *rsa.PrivateKey, ES256 with an *ecdsa.PrivateKey (P-256,
// r||s in 32 bytes each), EdDSA with an ed25519.PrivateKey, and "none" (or
// any other alg) with no signature at all.
func JWT(t testing.TB, key any, header, claims map[string]any) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("JWT: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(header) + "." + seg(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch header["alg"] {
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "RS256":
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case "ES256":
		r, s, e := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
		if err = e; err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	}
	if err != nil {
		t.Fatalf("JWT: sign: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
