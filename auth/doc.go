// Package auth proves who a customer is: it mints and verifies the shop's
// HMAC customer tokens (Signer) and verifies customer JSON Web Tokens
// (JWTVerifier) against a shared secret or public keys read from PEM or a
// JWKS (ParseJWTKeys; the caller reads the file).
//
// It knows no sale rules: which requests must carry a proof, and what a
// refused one answers, are the engine's. Every refusal wraps
// ErrUnauthorized, and its text is what the client may be told.
package auth
