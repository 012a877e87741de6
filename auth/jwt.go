package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Customer JWTs. A shop that already issues JSON Web Tokens lets its
// customers buy with them: the token's sub is the user id, its exp (required)
// and nbf are checked with JWTLeeway, and iss and aud when the verifier is
// configured with them. Each key pins the one algorithm its type allows:
// HS256 for a shared secret, RS256 for an RSA key, ES256 for an ECDSA P-256
// key, EdDSA for an Ed25519 key. "none" and every other algorithm are
// refused, and so is a token whose algorithm is not its key's (an HS256
// token against an RSA public key, the classic confusion).

// JWTLeeway is the clock skew allowed on exp and nbf: a token is accepted
// until exp + JWTLeeway and from nbf - JWTLeeway.
const JWTLeeway = 30 * time.Second

// MinJWTSecretLen is the shortest HS256 secret NewJWTSecretVerifier accepts,
// in bytes: RFC 7518 §3.2 wants a key at least as long as the hash.
const MinJWTSecretLen = 32

// MinRSABits is the smallest RSA modulus a JWT key may have.
const MinRSABits = 2048

// JWT failures, beside ErrMissingToken, ErrTokenExpired and ErrBadToken
// (a malformed token, a bad signature, an algorithm the key does not allow,
// an unknown kid). Their text is what the client is told.
var (
	ErrTokenNotYetValid = tokenError("token not valid yet")
	ErrTokenIssuer      = tokenError("wrong token issuer")
	ErrTokenAudience    = tokenError("wrong token audience")
	ErrTokenClaims      = tokenError("token lacks a required claim")
	ErrTokenUser        = tokenError("token is for another user_id")
)

// Errors of building a JWT verifier.
var (
	ErrShortJWTSecret = fmt.Errorf("the JWT secret must be at least %d bytes", MinJWTSecretLen)
	ErrJWTKey         = errors.New("unusable JWT key")
)

// JWTConfig is what a JWT verifier checks beside the signature and the
// times. The zero value checks neither issuer nor audience.
type JWTConfig struct {
	Issuer   string // when set, iss must equal it
	Audience string // when set, aud must contain it
}

// JWTKey is one key a JWT may be signed with.
type JWTKey struct {
	ID  string // kid; empty matches a token without one
	Key any    // []byte (HS256), *rsa.PublicKey, *ecdsa.PublicKey (P-256), ed25519.PublicKey
}

// JWTVerifier checks customer JWTs against a fixed set of keys. It is safe
// for concurrent use.
type JWTVerifier struct {
	keys    []verifyKey
	methods []string // the algorithms of keys, for the parser's allow-list
	opts    []jwt.ParserOption
}

type verifyKey struct {
	id  string
	alg string
	key any
}

// NewJWTSecretVerifier returns a verifier of HS256 tokens signed with a
// copy of secret.
func NewJWTSecretVerifier(secret []byte, cfg JWTConfig) (*JWTVerifier, error) {
	if len(secret) < MinJWTSecretLen {
		return nil, ErrShortJWTSecret
	}
	return NewJWTVerifier([]JWTKey{{Key: append([]byte(nil), secret...)}}, cfg)
}

// NewJWTVerifier returns a verifier of tokens signed with one of keys. A
// token with a kid is checked with the key of that ID, or with the only key
// when there is one without an ID (a PEM key or a secret); a token without
// a kid with the key without an ID, or with the only key.
func NewJWTVerifier(keys []JWTKey, cfg JWTConfig) (*JWTVerifier, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrJWTKey)
	}
	v := &JWTVerifier{opts: []jwt.ParserOption{
		jwt.WithLeeway(JWTLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
	}}
	if cfg.Issuer != "" {
		v.opts = append(v.opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		v.opts = append(v.opts, jwt.WithAudience(cfg.Audience))
	}
	seen := make(map[string]bool)
	for _, k := range keys {
		alg, err := jwtAlg(k.Key)
		if err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("%w: two keys with kid %q", ErrJWTKey, k.ID)
		}
		seen[k.ID] = true
		if _, ok := k.Key.([]byte); ok && len(keys) > 1 {
			return nil, fmt.Errorf("%w: a secret cannot be mixed with other keys", ErrJWTKey)
		}
		v.keys = append(v.keys, verifyKey{id: k.ID, alg: alg, key: k.Key})
		if !slices.Contains(v.methods, alg) {
			v.methods = append(v.methods, alg)
		}
	}
	v.opts = append(v.opts, jwt.WithValidMethods(v.methods))
	return v, nil
}

// jwtAlg is the one algorithm a key may verify.
func jwtAlg(key any) (string, error) {
	switch k := key.(type) {
	case []byte:
		if len(k) < MinJWTSecretLen {
			return "", ErrShortJWTSecret
		}
		return jwt.SigningMethodHS256.Alg(), nil
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrJWTKey, k.N.BitLen(), MinRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ECDSA key on %s, want P-256 (ES256)", ErrJWTKey, k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: Ed25519 key of %d bytes", ErrJWTKey, len(k))
		}
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("%w: unsupported key type %T (want an RSA, ECDSA P-256 or Ed25519 public key, or an HS256 secret)", ErrJWTKey, key)
}

// String keeps secrets out of logs and %v.
func (v *JWTVerifier) String() string {
	return fmt.Sprintf("auth.JWTVerifier{keys:%d algs:%v}", len(v.keys), v.methods)
}

// GoString keeps secrets out of %#v.
func (v *JWTVerifier) GoString() string { return v.String() }

// Verify checks token at time now and returns its sub. Its errors wrap
// ErrUnauthorized: ErrMissingToken, ErrTokenExpired, ErrTokenNotYetValid,
// ErrTokenIssuer, ErrTokenAudience, ErrTokenClaims (no exp or no sub, or
// no iss or aud when configured) or ErrBadToken.
func (v *JWTVerifier) Verify(token string, now time.Time) (string, error) {
	if token == "" {
		return "", ErrMissingToken
	}
	var claims jwt.RegisteredClaims
	p := jwt.NewParser(append(v.opts[:len(v.opts):len(v.opts)], jwt.WithTimeFunc(func() time.Time { return now }))...)
	if _, err := p.ParseWithClaims(token, &claims, v.key); err != nil {
		return "", jwtError(err)
	}
	if claims.Subject == "" {
		return "", ErrTokenClaims
	}
	return claims.Subject, nil
}

// VerifyUser checks token at time now as Verify does, and that it is for
// userID: it returns userID, or the token's sub when userID is empty, and
// ErrTokenUser when the sub is another user id.
func (v *JWTVerifier) VerifyUser(userID, token string, now time.Time) (string, error) {
	sub, err := v.Verify(token, now)
	switch {
	case err != nil:
		return "", err
	case userID != "" && userID != sub:
		return "", ErrTokenUser
	}
	return sub, nil
}

// key picks the key that token names and checks that its algorithm is the
// key's: an allowed algorithm is not enough when several key types are
// configured.
func (v *JWTVerifier) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	var k *verifyKey
	for i := range v.keys {
		if v.keys[i].id == kid {
			k = &v.keys[i]
			break
		}
	}
	if only := &v.keys[0]; k == nil && len(v.keys) == 1 && (only.id == "" || kid == "") {
		k = only
	}
	if k == nil {
		return nil, fmt.Errorf("no key for kid %q", kid)
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("alg %s for a %s key", t.Method.Alg(), k.alg)
	}
	return k.key, nil
}

// jwtError maps the library's failure to what the client is told.
func jwtError(err error) error {
	for _, m := range []struct {
		lib, ours error
	}{
		// Signature and shape first: claims of a forged token mean nothing.
		{jwt.ErrTokenMalformed, ErrBadToken},
		{jwt.ErrTokenSignatureInvalid, ErrBadToken},
		{jwt.ErrTokenUnverifiable, ErrBadToken},
		{jwt.ErrTokenRequiredClaimMissing, ErrTokenClaims},
		{jwt.ErrTokenExpired, ErrTokenExpired},
		{jwt.ErrTokenNotValidYet, ErrTokenNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ErrTokenIssuer},
		{jwt.ErrTokenInvalidAudience, ErrTokenAudience},
	} {
		if errors.Is(err, m.lib) {
			return m.ours
		}
	}
	return ErrBadToken
}
