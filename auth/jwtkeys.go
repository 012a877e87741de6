package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
)

// ParseJWTKeys reads the public keys customer JWTs are verified with, from
// the bytes of a key file (commands reads the file):
//
//   - PEM: one PUBLIC KEY (PKIX: RSA, ECDSA P-256 or Ed25519), RSA PUBLIC
//     KEY (PKCS #1) or CERTIFICATE block; its key has no ID, so it checks
//     every token whatever its kid.
//   - JWKS (RFC 7517): {"keys":[…]} or a single JWK, with kty RSA (n, e),
//     EC (crv P-256, x, y) or OKP (crv Ed25519, x). Keys whose use is not
//     "sig" or whose alg is not their type's (RS256, ES256, EdDSA) are
//     skipped, as are other key types; kid selects among the rest.
//
// Private keys are refused: the server only ever needs the public half.
func ParseJWTKeys(data []byte) ([]JWTKey, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJWKS(t)
	}
	return parsePEMKey(data)
}

func parsePEMKey(data []byte) ([]JWTKey, error) {
	var keys []JWTKey
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: a %s; give the public key only (openssl pkey -pubout)", ErrJWTKey, b.Type)
		default:
			continue // EC PARAMETERS and the like
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrJWTKey, b.Type, err)
		}
		keys = append(keys, JWTKey{Key: key})
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("%w: neither a PEM public key nor a JWKS", ErrJWTKey)
	case 1:
		return keys, nil
	}
	return nil, fmt.Errorf("%w: %d PEM keys; give one, or a JWKS file with a kid for each", ErrJWTKey, len(keys))
}

// jwk is the part of a JSON Web Key a verifier reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func parseJWKS(data []byte) ([]JWTKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	var one jwk
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %w", ErrJWTKey, err)
	}
	if set.Keys == nil {
		if err := json.Unmarshal(data, &one); err != nil || one.Kty == "" {
			return nil, fmt.Errorf("%w: JSON that is neither a JWKS ({\"keys\":[…]}) nor a JWK", ErrJWTKey)
		}
		set.Keys = []jwk{one}
	}
	var keys []JWTKey
	for i, k := range set.Keys {
		if k.D != "" {
			return nil, fmt.Errorf("%w: JWKS key %d (kid %q) is a private key; publish the public half only", ErrJWTKey, i, k.Kid)
		}
		key, alg, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: JWKS key %d (kid %q): %w", ErrJWTKey, i, k.Kid, err)
		}
		if key == nil || k.Use != "" && k.Use != "sig" || k.Alg != "" && k.Alg != alg {
			continue
		}
		keys = append(keys, JWTKey{ID: k.Kid, Key: key})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the JWKS has no RS256, ES256 or EdDSA signing key", ErrJWTKey)
	}
	return keys, nil
}

// publicKey decodes k; a nil key (and no error) for a type a verifier does
// not use.
func (k jwk) publicKey() (key any, alg string, err error) {
	b64 := func(s string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(s); err == nil && len(b) == 0 {
			err = fmt.Errorf("empty member")
		}
		return b
	}
	switch {
	case k.Kty == "RSA":
		n, e := b64(k.N), b64(k.E)
		if err != nil {
			return nil, "", err
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
			return nil, "", fmt.Errorf("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, "RS256", nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, y := b64(k.X), b64(k.Y)
		if err != nil {
			return nil, "", err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, "", fmt.Errorf("P-256 coordinates must be 32 bytes each")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", err
		}
		return pub, "ES256", nil
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		x := b64(k.X)
		if err != nil {
			return nil, "", err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("an Ed25519 key is %d bytes, not %d", ed25519.PublicKeySize, len(x))
		}
		return ed25519.PublicKey(x), "EdDSA", nil
	}
	return nil, "", nil
}
