package engine

import "time"

// The engine asks for proof of a customer's user id but does not check it
// itself: these are the two questions it asks, answered by package auth
// (*auth.Signer and *auth.JWTVerifier) or by anything else with the same
// method. The text of a refusal is what the client is told, with
// wire.StatusUnauthorized.

// TokenVerifier checks an HMAC customer token (see WithSigner).
type TokenVerifier interface {
	// Verify checks that token, expiring at expires (Unix seconds), proves
	// userID at time now.
	Verify(userID, token string, expires int64, now time.Time) error
}

// JWTVerifier checks a customer JWT (see WithJWT).
type JWTVerifier interface {
	// VerifyUser checks token at time now and returns the user id it
	// proves: userID, or the token's own when userID is empty.
	VerifyUser(userID, token string, now time.Time) (string, error)
}
