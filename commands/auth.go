package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/wire"
)

// userSecretFlags name the shop secret that customer tokens are signed
// with; serve, bench and admin token share them.
func userSecretFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "user-secret",
			Usage:   fmt.Sprintf("shop `SECRET` (at least %d bytes) customer tokens are signed with; serve then sells only to purchases with a valid token", auth.MinSecretLen),
			EnvVars: []string{"FLASHSALE_USER_SECRET"},
		},
		&cli.StringFlag{
			Name:      "user-secret-file",
			Usage:     "read the shop secret from `FILE` (one trailing newline is dropped), to keep it off the command line",
			EnvVars:   []string{"FLASHSALE_USER_SECRET_FILE"},
			TakesFile: true,
		},
	}
}

// signerFrom builds the Signer that c's secret flags name, nil when neither
// is set.
func signerFrom(c *cli.Context) (*auth.Signer, error) {
	secret, err := userSecretFrom(c)
	if err != nil {
		return nil, err
	}
	return signerOf(c, secret)
}

// userSecretFrom reads the shop secret c's secret flags name, nil when
// neither is set.
func userSecretFrom(c *cli.Context) ([]byte, error) {
	secret, file := c.String("user-secret"), c.String("user-secret-file")
	switch {
	case secret != "" && file != "":
		return nil, usageErrorf(c, "--user-secret and --user-secret-file are exclusive")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--user-secret-file: %w", err)
		}
		secret, _ = strings.CutSuffix(string(b), "\n")
		secret, _ = strings.CutSuffix(secret, "\r")
		if secret == "" {
			return nil, usageErrorf(c, "--user-secret-file %s is empty", file)
		}
	case secret == "":
		return nil, nil
	}
	return []byte(secret), nil
}

// signerOf is the Signer of secret, nil for none.
func signerOf(c *cli.Context, secret []byte) (*auth.Signer, error) {
	if secret == nil {
		return nil, nil
	}
	s, err := auth.NewSigner(secret)
	if err != nil {
		return nil, usageErrorf(c, "%v", err)
	}
	return s, nil
}

// adminTokenCommand mints a customer token. It needs the secret, not Redis.
func adminTokenCommand() *cli.Command {
	return &cli.Command{
		Name:      "token",
		Usage:     "mint a customer token for USER with the shop secret (no Redis needed)",
		ArgsUsage: "USER",
		Flags: concat([]cli.Flag{
			&cli.DurationFlag{Name: "ttl", Usage: "the token is valid for `DURATION` (at most 720h, 30 days)", Value: time.Hour},
			&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts instead of text"},
		}, userSecretFlags()),
		OnUsageError: onUsageError,
		Action:       adminToken,
	}
}

func adminToken(c *cli.Context) error {
	as, err := args(c, "USER")
	if err != nil {
		return err
	}
	user := as[0]
	if err := engine.ValidateUserID(user); err != nil {
		return usageErrorf(c, "USER: %v", err)
	}
	ttl := c.Duration("ttl")
	if ttl <= 0 || ttl > auth.MaxTokenLifetime {
		return usageErrorf(c, "--ttl must be positive and at most 720h (30 days), got %s", ttl)
	}
	signer, err := signerFrom(c)
	if err != nil {
		return err
	}
	if signer == nil {
		return usageErrorf(c, "admin token needs --user-secret, --user-secret-file or FLASHSALE_USER_SECRET")
	}
	expires := time.Unix(time.Now().Add(ttl).Unix(), 0).UTC()
	token := signer.Mint(user, expires)
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(struct {
			UserID  string `json:"user_id"`
			Token   string `json:"token"`
			Expires int64  `json:"expires"`
		}{user, token, expires.Unix()})
	}
	_, err = fmt.Fprintf(c.App.Writer, "token: %s\nexpires: %d (%s)\n", token, expires.Unix(), expires.Format(time.RFC3339))
	return err
}

// benchTokenTTL is how long the tokens bench mints stay valid.
const benchTokenTTL = 24 * time.Hour

// userTokens are the tokens bench sends, all with one expiry. With --users
// they are minted once per customer, up front.
type userTokens struct {
	signer  *auth.Signer
	expires time.Time
	cache   []string // by customer number, with --users
}

func newUserTokens(s *auth.Signer, cfg loadgen.Config) *userTokens {
	t := &userTokens{signer: s, expires: time.Unix(time.Now().Add(benchTokenTTL).Unix(), 0)}
	if cfg.Users > 0 {
		t.cache = make([]string, min(cfg.Users, cfg.Requests)) // only those a run can reach
		for i := range t.cache {
			t.cache[i] = s.Mint(cfg.UserPrefix+"_"+strconv.Itoa(i), t.expires)
		}
	}
	return t
}

// sign sets req's token for customer number user, whose id is req.UserID.
func (t *userTokens) sign(req *wire.PurchaseRequest, user int64) {
	if t == nil {
		return
	}
	if user < int64(len(t.cache)) {
		req.Token = t.cache[user]
	} else {
		req.Token = t.signer.Mint(req.UserID, t.expires)
	}
	req.Expires = t.expires.Unix()
}

// proofOptions are the engine options that make purchases prove their
// user id with the proofs serve's flags set up, signer and v, either of
// which may be nil. Only a set one becomes an option: a nil *auth.Signer
// in the engine's interface would not be a nil interface.
func proofOptions(signer *auth.Signer, v *auth.JWTVerifier) []engine.Option {
	var opts []engine.Option
	if signer != nil {
		opts = append(opts, engine.WithSigner(signer))
	}
	if v != nil {
		opts = append(opts, engine.WithJWT(v))
	}
	return opts
}

// jwtFlags name how serve verifies the shop's customer JWTs.
func jwtFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "jwt-secret",
			Usage:   fmt.Sprintf("accept customer JWTs signed HS256 with this `SECRET` (at least %d bytes); their sub is the user id", auth.MinJWTSecretLen),
			EnvVars: []string{"FLASHSALE_JWT_SECRET"},
		},
		&cli.StringFlag{
			Name:      "jwt-key",
			Usage:     "accept customer JWTs signed with the public key in `FILE`: PEM (RSA → RS256, ECDSA P-256 → ES256, Ed25519 → EdDSA) or a JWKS (kid selects the key); exclusive with --jwt-secret",
			EnvVars:   []string{"FLASHSALE_JWT_KEY"},
			TakesFile: true,
		},
		&cli.StringFlag{
			Name:    "jwt-issuer",
			Usage:   "a customer JWT's iss must be `ISSUER`",
			EnvVars: []string{"FLASHSALE_JWT_ISSUER"},
		},
		&cli.StringFlag{
			Name:    "jwt-audience",
			Usage:   "a customer JWT's aud must contain `AUDIENCE`",
			EnvVars: []string{"FLASHSALE_JWT_AUDIENCE"},
		},
	}
}

// jwtVerifierFrom builds the verifier that c's JWT flags name, nil when
// neither --jwt-secret nor --jwt-key is set.
func jwtVerifierFrom(c *cli.Context) (*auth.JWTVerifier, error) {
	secret, file := c.String("jwt-secret"), c.String("jwt-key")
	cfg := auth.JWTConfig{Issuer: c.String("jwt-issuer"), Audience: c.String("jwt-audience")}
	var (
		v   *auth.JWTVerifier
		err error
	)
	switch {
	case secret != "" && file != "":
		return nil, usageErrorf(c, "--jwt-secret and --jwt-key are exclusive")
	case secret != "":
		v, err = auth.NewJWTSecretVerifier([]byte(secret), cfg)
	case file != "":
		b, rerr := os.ReadFile(file)
		if rerr != nil {
			return nil, fmt.Errorf("--jwt-key: %w", rerr)
		}
		keys, perr := auth.ParseJWTKeys(b)
		if perr != nil {
			return nil, usageErrorf(c, "--jwt-key %s: %v", file, perr)
		}
		v, err = auth.NewJWTVerifier(keys, cfg)
	case cfg != auth.JWTConfig{}:
		return nil, usageErrorf(c, "--jwt-issuer and --jwt-audience need --jwt-secret or --jwt-key")
	default:
		return nil, nil
	}
	if err != nil {
		return nil, usageErrorf(c, "%v", err)
	}
	return v, nil
}
