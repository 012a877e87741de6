package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// Tokens in these tests are minted by saletest.JWT, by hand from the RFCs,
// never by the library the verifier uses.

var (
	jwtSecret = saletest.JWTSecret
	jwtNow    = saletest.JWTNow
)

// testKeys are one private key of each public-key type, made once.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

var newTestKeys = sync.OnceValue(func() testKeys {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, d, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return testKeys{r, e, d}
})

// claims are a valid token's claims at jwtNow for sub, changed by edits
// (a nil value deletes the claim).
func claims(sub string, edits map[string]any) map[string]any {
	return saletest.Claims(sub, jwtNow, edits)
}

func hs256(t testing.TB, c map[string]any) string {
	return saletest.JWT(t, jwtSecret, map[string]any{"alg": "HS256", "typ": "JWT"}, c)
}

func pemOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func keyVerifier(t testing.TB, data []byte, cfg auth.JWTConfig) *auth.JWTVerifier {
	t.Helper()
	keys, err := auth.ParseJWTKeys(data)
	if err != nil {
		t.Fatalf("ParseJWTKeys: %v", err)
	}
	v, err := auth.NewJWTVerifier(keys, cfg)
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	return v
}

var shopConfig = auth.JWTConfig{Issuer: saletest.JWTIssuer, Audience: saletest.JWTAudience}

func TestJWTVerifyClaims(t *testing.T) {
	t.Parallel()
	v, err := auth.NewJWTSecretVerifier(jwtSecret, shopConfig)
	if err != nil {
		t.Fatal(err)
	}
	leeway := auth.JWTLeeway
	good := hs256(t, claims("ann", nil))
	parts := strings.Split(good, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"good", good, nil},
		{"audience list", hs256(t, claims("ann", map[string]any{"aud": []string{"other", "flashsale"}})), nil},
		{"no nbf, no iat", hs256(t, claims("ann", map[string]any{"iat": nil})), nil},
		{"expired within the leeway", hs256(t, claims("ann", map[string]any{"exp": jwtNow.Add(-leeway + time.Second).Unix()})), nil},
		{"expired past the leeway", hs256(t, claims("ann", map[string]any{"exp": jwtNow.Add(-leeway).Unix()})), auth.ErrTokenExpired},
		{"expired an hour ago", hs256(t, claims("ann", map[string]any{"exp": jwtNow.Add(-time.Hour).Unix()})), auth.ErrTokenExpired},
		{"nbf within the leeway", hs256(t, claims("ann", map[string]any{"nbf": jwtNow.Add(leeway).Unix()})), nil},
		{"nbf past the leeway", hs256(t, claims("ann", map[string]any{"nbf": jwtNow.Add(leeway + time.Second).Unix()})), auth.ErrTokenNotYetValid},
		{"no exp", hs256(t, claims("ann", map[string]any{"exp": nil})), auth.ErrTokenClaims},
		{"no sub", hs256(t, claims("ann", map[string]any{"sub": nil})), auth.ErrTokenClaims},
		{"empty sub", hs256(t, claims("", nil)), auth.ErrTokenClaims},
		{"wrong issuer", hs256(t, claims("ann", map[string]any{"iss": "https://evil.example"})), auth.ErrTokenIssuer},
		{"no issuer", hs256(t, claims("ann", map[string]any{"iss": nil})), auth.ErrTokenClaims},
		{"wrong audience", hs256(t, claims("ann", map[string]any{"aud": []string{"other"}})), auth.ErrTokenAudience},
		{"no audience", hs256(t, claims("ann", map[string]any{"aud": nil})), auth.ErrTokenClaims},
		{"exp as a string", hs256(t, claims("ann", map[string]any{"exp": "tomorrow"})), auth.ErrBadToken},
		{"missing", "", auth.ErrMissingToken},
		{"other secret", saletest.JWT(t, []byte("another-secret-of-32-bytes-......"), map[string]any{"alg": "HS256"}, claims("ann", nil)), auth.ErrBadToken},
		{"claims changed", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"bob","exp":9999999999}`)) + "." + parts[2], auth.ErrBadToken},
		{"alg none", saletest.JWT(t, nil, map[string]any{"alg": "none"}, claims("ann", nil)), auth.ErrBadToken},
		{"alg none, HS256 signature kept", noneHeader + "." + parts[1] + "." + parts[2], auth.ErrBadToken},
		{"alg none, no signature part", noneHeader + "." + parts[1], auth.ErrBadToken},
		{"alg HS384", hs384(t, claims("ann", nil)), auth.ErrBadToken},
		{"not a JWT", "hello", auth.ErrBadToken},
		{"padded", good + "=", auth.ErrBadToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Verify(tt.token, jwtNow)
			if err != tt.want {
				t.Fatalf("Verify = %q, %v; want %v", sub, err, tt.want)
			}
			if err == nil && sub != "ann" {
				t.Errorf("sub = %q, want ann", sub)
			}
			if err != nil && !errors.Is(err, auth.ErrUnauthorized) {
				t.Errorf("%v does not wrap ErrUnauthorized", err)
			}
		})
	}

	// Without iss and aud configured, neither is checked.
	open, err := auth.NewJWTSecretVerifier(jwtSecret, auth.JWTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := open.Verify(hs256(t, claims("ann", map[string]any{"iss": nil, "aud": nil})), jwtNow); err != nil || sub != "ann" {
		t.Errorf("no iss/aud configured: Verify = %q, %v; want ann", sub, err)
	}
}

// hs384 is an HS256-shaped token claiming HS384: an algorithm no key allows.
func hs384(t testing.TB, c map[string]any) string {
	tok := hs256(t, c)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS384","typ":"JWT"}`)) + tok[strings.Index(tok, "."):]
}

// TestJWTVerifyUser checks that a token proves only its own sub.
func TestJWTVerifyUser(t *testing.T) {
	t.Parallel()
	v, err := auth.NewJWTSecretVerifier(jwtSecret, shopConfig)
	if err != nil {
		t.Fatal(err)
	}
	ann := hs256(t, claims("ann", nil))
	for _, tt := range []struct {
		name, user, token, want string
		err                     error
	}{
		{"no user_id: the sub", "", ann, "ann", nil},
		{"the sub's user_id", "ann", ann, "ann", nil},
		{"another user_id", "bob", ann, "", auth.ErrTokenUser},
		{"a prefix of the sub", "an", ann, "", auth.ErrTokenUser},
		{"expired, for its sub", "ann", hs256(t, claims("ann", map[string]any{"exp": jwtNow.Add(-time.Hour).Unix()})), "", auth.ErrTokenExpired},
		{"missing", "ann", "", "", auth.ErrMissingToken},
	} {
		user, err := v.VerifyUser(tt.user, tt.token, jwtNow)
		if user != tt.want || err != tt.err {
			t.Errorf("%s: VerifyUser = %q, %v; want %q, %v", tt.name, user, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("%s: %v does not wrap ErrUnauthorized", tt.name, err)
		}
	}
	if text := auth.ErrTokenUser.Error(); text != "token is for another user_id" {
		t.Errorf("ErrTokenUser text %q", text)
	}
}

func TestJWTPublicKeys(t *testing.T) {
	t.Parallel()
	k := newTestKeys()
	other := struct {
		ec *ecdsa.PrivateKey
		ed ed25519.PrivateKey
	}{}
	other.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, other.ed, _ = ed25519.GenerateKey(rand.Reader)
	c := claims("ann", nil)
	rsaPEM := pemOf(t, &k.rsa.PublicKey)
	rsaPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	for _, tt := range []struct {
		name  string
		key   []byte
		token string
		want  error
	}{
		{"RS256", rsaPEM, saletest.JWT(t, k.rsa, map[string]any{"alg": "RS256"}, c), nil},
		{"RS256, PKCS #1 PEM", rsaPKCS1, saletest.JWT(t, k.rsa, map[string]any{"alg": "RS256"}, c), nil},
		{"RS256 with any kid against a PEM key", rsaPEM, saletest.JWT(t, k.rsa, map[string]any{"alg": "RS256", "kid": "2026-11"}, c), nil},
		{"ES256", pemOf(t, &k.ec.PublicKey), saletest.JWT(t, k.ec, map[string]any{"alg": "ES256"}, c), nil},
		{"EdDSA", pemOf(t, k.ed.Public()), saletest.JWT(t, k.ed, map[string]any{"alg": "EdDSA"}, c), nil},

		{"ES256 by another key", pemOf(t, &k.ec.PublicKey), saletest.JWT(t, other.ec, map[string]any{"alg": "ES256"}, c), auth.ErrBadToken},
		{"EdDSA by another key", pemOf(t, k.ed.Public()), saletest.JWT(t, other.ed, map[string]any{"alg": "EdDSA"}, c), auth.ErrBadToken},
		{"RS256 expired", rsaPEM, saletest.JWT(t, k.rsa, map[string]any{"alg": "RS256"}, claims("ann", map[string]any{"exp": jwtNow.Add(-time.Hour).Unix()})), auth.ErrTokenExpired},
		// The confusion attack: HMAC keyed with the public key's PEM, which
		// the attacker knows. The RSA key allows RS256 only.
		{"HS256 keyed with the RSA PEM", rsaPEM, saletest.JWT(t, rsaPEM, map[string]any{"alg": "HS256"}, c), auth.ErrBadToken},
		{"HS256 keyed with the RSA DER", rsaPEM, saletest.JWT(t, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), map[string]any{"alg": "HS256"}, c), auth.ErrBadToken},
		{"HS256 keyed with the Ed25519 key", pemOf(t, k.ed.Public()), saletest.JWT(t, []byte(k.ed.Public().(ed25519.PublicKey)), map[string]any{"alg": "HS256"}, c), auth.ErrBadToken},
		{"ES256 against an RSA key", rsaPEM, saletest.JWT(t, k.ec, map[string]any{"alg": "ES256"}, c), auth.ErrBadToken},
		{"RS256 against an EC key", pemOf(t, &k.ec.PublicKey), saletest.JWT(t, k.rsa, map[string]any{"alg": "RS256"}, c), auth.ErrBadToken},
		{"none against an RSA key", rsaPEM, saletest.JWT(t, nil, map[string]any{"alg": "none"}, c), auth.ErrBadToken},
		{"PS256 (RSA, but not pinned)", rsaPEM, saletest.JWT(t, k.rsa, map[string]any{"alg": "PS256"}, c), auth.ErrBadToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := keyVerifier(t, tt.key, shopConfig).Verify(tt.token, jwtNow)
			if err != tt.want || err == nil && sub != "ann" {
				t.Fatalf("Verify = %q, %v; want ann, %v", sub, err, tt.want)
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks is a key set with one key of each type, plus keys a verifier must
// skip.
func jwks(t testing.TB, k testKeys) []byte {
	t.Helper()
	ec := make([]byte, 64)
	k.ec.X.FillBytes(ec[:32])
	k.ec.Y.FillBytes(ec[32:])
	set := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ec[:32]), "y": b64(ec[32:])},
		{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": b64(k.ed.Public().(ed25519.PublicKey))},
		// Skipped: an encryption key, an alg not pinned, a symmetric key.
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
		{"kty": "RSA", "kid": "ps", "alg": "PS256", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
		{"kty": "oct", "kid": "sym", "k": b64(jwtSecret)},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWKSKidSelection(t *testing.T) {
	t.Parallel()
	k := newTestKeys()
	v := keyVerifier(t, jwks(t, k), shopConfig)
	c := claims("ann", nil)
	hdr := func(alg, kid string) map[string]any {
		h := map[string]any{"alg": alg}
		if kid != "" {
			h["kid"] = kid
		}
		return h
	}
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"RSA by kid", saletest.JWT(t, k.rsa, hdr("RS256", "r1"), c), nil},
		{"EC by kid", saletest.JWT(t, k.ec, hdr("ES256", "e1"), c), nil},
		{"Ed25519 by kid", saletest.JWT(t, k.ed, hdr("EdDSA", "d1"), c), nil},
		{"no kid among several keys", saletest.JWT(t, k.ec, hdr("ES256", ""), c), auth.ErrBadToken},
		{"unknown kid", saletest.JWT(t, k.ec, hdr("ES256", "e2"), c), auth.ErrBadToken},
		{"a skipped key's kid", saletest.JWT(t, k.rsa, hdr("RS256", "enc"), c), auth.ErrBadToken},
		{"a symmetric key's kid", saletest.JWT(t, jwtSecret, hdr("HS256", "sym"), c), auth.ErrBadToken},
		// Each alg is allowed by some key, but not by the key named.
		{"ES256 naming the RSA key", saletest.JWT(t, k.ec, hdr("ES256", "r1"), c), auth.ErrBadToken},
		{"EdDSA naming the EC key", saletest.JWT(t, k.ed, hdr("EdDSA", "e1"), c), auth.ErrBadToken},
		{"HS256 keyed with the RSA modulus", saletest.JWT(t, k.rsa.N.Bytes(), hdr("HS256", "r1"), c), auth.ErrBadToken},
		{"EC signature under the Ed25519 kid", saletest.JWT(t, k.ec, hdr("ES256", "d1"), c), auth.ErrBadToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Verify(tt.token, jwtNow)
			if err != tt.want || err == nil && sub != "ann" {
				t.Fatalf("Verify = %q, %v; want ann, %v", sub, err, tt.want)
			}
		})
	}

	// One JWK alone, with a kid: tokens without a kid use it.
	ed := fmt.Sprintf(`{"kty":"OKP","kid":"only","crv":"Ed25519","x":%q}`, b64(k.ed.Public().(ed25519.PublicKey)))
	if sub, err := keyVerifier(t, []byte(ed), shopConfig).Verify(saletest.JWT(t, k.ed, hdr("EdDSA", ""), c), jwtNow); err != nil || sub != "ann" {
		t.Errorf("single JWK, token without kid: %q, %v", sub, err)
	}
}

func TestJWTKeyErrors(t *testing.T) {
	t.Parallel()
	k := newTestKeys()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key")},
		{"private key PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"corrupt PEM key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})},
		{"two PEM keys", append(pemOf(t, &k.ec.PublicKey), pemOf(t, k.ed.Public())...)},
		{"P-384", pemOf(t, &p384.PublicKey)},
		{"RSA 1024", pemOf(t, &small.PublicKey)},
		{"JSON without keys", []byte(`{"issuer":"x"}`)},
		{"bad JSON", []byte(`{"keys":[`)},
		{"JWKS of encryption keys only", []byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`)},
		{"JWKS with a private key", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(k.ed.Public().(ed25519.PublicKey)) + `","d":"` + b64(k.ed.Seed()) + `"}]}`)},
		{"JWK with a short Ed25519 key", []byte(`{"kty":"OKP","crv":"Ed25519","x":"AQAB"}`)},
		{"JWK off the curve", []byte(`{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}`)},
		{"JWK with bad base64", []byte(`{"kty":"RSA","n":"!!","e":"AQAB"}`)},
		{"two keys with one kid", []byte(`{"keys":[` +
			`{"kty":"OKP","kid":"a","crv":"Ed25519","x":"` + b64(k.ed.Public().(ed25519.PublicKey)) + `"},` +
			`{"kty":"OKP","kid":"a","crv":"Ed25519","x":"` + b64(k.ed.Public().(ed25519.PublicKey)) + `"}]}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := auth.ParseJWTKeys(tt.data)
			if err == nil {
				_, err = auth.NewJWTVerifier(keys, auth.JWTConfig{})
			}
			if !errors.Is(err, auth.ErrJWTKey) {
				t.Fatalf("err = %v, want ErrJWTKey", err)
			}
		})
	}

	for _, n := range []int{0, 16, auth.MinJWTSecretLen - 1} {
		if v, err := auth.NewJWTSecretVerifier(make([]byte, n), auth.JWTConfig{}); !errors.Is(err, auth.ErrShortJWTSecret) || v != nil {
			t.Errorf("NewJWTSecretVerifier(%d bytes) = %v, %v; want ErrShortJWTSecret", n, v, err)
		}
	}
	v, err := auth.NewJWTSecretVerifier(jwtSecret, auth.JWTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	checkRedacted(t, v)
}
