package commands

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// serverTLSFlags are serve's TLS flags.
func serverTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "tls-cert",
			Usage:   "serve TLS (1.2 or later) with the PEM certificate chain in `FILE`, leaf first; needs --tls-key",
			EnvVars: []string{"FLASHSALE_TLS_CERT"},
		},
		&cli.StringFlag{
			Name:    "tls-key",
			Usage:   "PEM private key `FILE` of --tls-cert",
			EnvVars: []string{"FLASHSALE_TLS_KEY"},
		},
		&cli.StringFlag{
			Name:    "tls-client-ca",
			Usage:   "mutual TLS: require a client certificate signed by a CA in this PEM `FILE`",
			EnvVars: []string{"FLASHSALE_TLS_CLIENT_CA"},
		},
	}
}

// clientTLSFlags are bench's TLS flags. They have no environment variables
// on purpose: FLASHSALE_TLS_CERT is the server's certificate.
func clientTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{
			Name:  "tls",
			Usage: "connect with TLS, verifying the server against the system roots (or --tls-ca)",
		},
		&cli.StringFlag{
			Name:  "tls-ca",
			Usage: "with --tls: trust the CA certificates in this PEM `FILE` instead of the system roots",
		},
		&cli.StringFlag{
			Name:  "tls-server-name",
			Usage: "with --tls: `NAME` sent as SNI and checked against the server certificate (default: the host of --addr)",
		},
		&cli.StringFlag{
			Name:  "tls-cert",
			Usage: "with --tls: present the PEM client certificate in `FILE` (for a server with --tls-client-ca); needs --tls-key",
		},
		&cli.StringFlag{
			Name:  "tls-key",
			Usage: "with --tls: PEM private key `FILE` of --tls-cert",
		},
		&cli.BoolFlag{
			Name:  "tls-insecure",
			Usage: "with --tls: do not verify the server certificate. FOR TESTING ONLY: anyone on the path can read and change the traffic",
		},
	}
}

// serverTLSConfig builds serve's TLS configuration from its flags: nil when
// TLS is off. Certificate files are read here, so a bad one fails the start.
func serverTLSConfig(c *cli.Context) (*tls.Config, error) {
	cert, err := keyPair(c)
	if err != nil || cert == nil {
		if err == nil && c.String("tls-client-ca") != "" {
			err = usageErrorf(c, "--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
	if file := c.String("tls-client-ca"); file != "" {
		if cfg.ClientCAs, err = certPool("--tls-client-ca", file); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// clientTLSConfig builds bench's TLS configuration from its flags: nil
// without --tls. Commands without these flags (demo) get nil.
func clientTLSConfig(c *cli.Context) (*tls.Config, error) {
	if !c.Bool("tls") {
		for _, name := range []string{"tls-ca", "tls-server-name", "tls-cert", "tls-key", "tls-insecure"} {
			if c.IsSet(name) {
				return nil, usageErrorf(c, "--%s needs --tls", name)
			}
		}
		return nil, nil
	}
	cert, err := keyPair(c)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.String("tls-server-name"),
		InsecureSkipVerify: c.Bool("tls-insecure"), // documented as for testing only
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if file := c.String("tls-ca"); file != "" {
		if cfg.RootCAs, err = certPool("--tls-ca", file); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// keyPair loads --tls-cert and --tls-key: nil when neither is given.
func keyPair(c *cli.Context) (*tls.Certificate, error) {
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, usageErrorf(c, "--tls-key needs --tls-cert")
	case keyFile == "":
		return nil, usageErrorf(c, "--tls-cert needs --tls-key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, oneLine(err))
	}
	return &cert, nil
}

// certPool reads the PEM certificates in file.
func certPool(flag, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, file)
	}
	return pool, nil
}

// oneLine keeps an error on one line (some x509 parse errors are not).
func oneLine(err error) error {
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		return fmt.Errorf("%s", strings.Join(strings.Fields(msg), " "))
	}
	return err
}

// logServerTLS says that TLS is on, with what certificate, and warns when
// the certificate is outside its validity period.
func logServerTLS(log zerolog.Logger, c *cli.Context, cfg *tls.Config) {
	if cfg == nil {
		return
	}
	ev := log.Info().Str("cert", c.String("tls-cert")).Str("min_version", "TLS 1.2")
	if leaf := cfg.Certificates[0].Leaf; leaf != nil {
		ev = ev.Str("subject", leaf.Subject.String()).Strs("dns_names", leaf.DNSNames).Time("not_after", leaf.NotAfter)
		if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
			log.Warn().Str("cert", c.String("tls-cert")).Time("not_before", leaf.NotBefore).Time("not_after", leaf.NotAfter).
				Msg("TLS certificate is outside its validity period: clients will reject it")
		}
	}
	if cfg.ClientAuth == tls.RequireAndVerifyClientCert {
		ev.Str("client_ca", c.String("tls-client-ca")).Msg("TLS on, mutual: client certificates required")
		return
	}
	ev.Msg("TLS on")
}

// dialFunc connects to addr over TCP, or TLS when cfg is not nil; the
// timeout bounds the connect and the TLS handshake.
func dialFunc(addr string, timeout time.Duration, cfg *tls.Config) func(ctx context.Context) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout}
	if cfg == nil {
		return func(ctx context.Context) (net.Conn, error) { return nd.DialContext(ctx, "tcp", addr) }
	}
	td := &tls.Dialer{NetDialer: nd, Config: cfg}
	return func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
}
