package main

// The CLI's own connection security: TLS (with a CA bundle) and SASL
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), from flags, the environment
// (TLOG_TLS_CA, TLOG_SASL_MECHANISM, TLOG_SASL_USER, TLOG_SASL_PASSWORD)
// or a --command-config properties file with Kafka client names
// (security.protocol, sasl.mechanism, sasl.username, sasl.password,
// ssl.ca.location). Flags and the environment win over the file.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/urfave/cli/v2"
)

func securityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "tls", EnvVars: []string{"TLOG_TLS"}, Usage: "connect with TLS (implied by --tls-ca)"},
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"TLOG_TLS_CA"}, Usage: "PEM CA bundle the agents' certificates are checked against (default: the system's)"},
		&cli.StringFlag{Name: "sasl-mechanism", EnvVars: []string{"TLOG_SASL_MECHANISM"}, Usage: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		&cli.StringFlag{Name: "sasl-user", EnvVars: []string{"TLOG_SASL_USER"}, Usage: "SASL user"},
		&cli.StringFlag{Name: "sasl-password", EnvVars: []string{"TLOG_SASL_PASSWORD"}, Usage: "SASL password (prefer the environment variable)"},
		&cli.StringFlag{Name: "command-config", Aliases: []string{"F"}, Usage: "Kafka client properties `FILE` (kcat's -F): security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location"},
	}
}

// readProperties reads key=value lines (# and ! start comments).
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key=value", path, n)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props, sc.Err()
}

// securityOpts are the franz-go options the connection settings ask for.
func securityOpts(c *cli.Context) ([]kgo.Opt, error) {
	props := map[string]string{}
	if path := c.String("command-config"); path != "" {
		var err error
		if props, err = readProperties(path); err != nil {
			return nil, fail(2, "bad --command-config: %v", err)
		}
	}
	pick := func(flag, prop string) string {
		if c.IsSet(flag) || c.String(flag) != "" {
			return c.String(flag)
		}
		return props[prop]
	}
	proto := strings.ToUpper(props["security.protocol"])
	switch proto {
	case "", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
	default:
		return nil, fail(2, "bad security.protocol %q: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", proto)
	}
	ca := pick("tls-ca", "ssl.ca.location")
	mech := strings.ToUpper(pick("sasl-mechanism", "sasl.mechanism"))
	user, pass := pick("sasl-user", "sasl.username"), pick("sasl-password", "sasl.password")
	var opts []kgo.Opt
	if c.Bool("tls") || ca != "" || proto == "SSL" || proto == "SASL_SSL" {
		conf := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, fail(2, "bad --tls-ca: %v", err)
			}
			conf.RootCAs = x509.NewCertPool()
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fail(2, "bad --tls-ca: %s holds no PEM certificate", ca)
			}
		}
		opts = append(opts, kgo.DialTLSConfig(conf))
	}
	if mech == "" && (proto == "SASL_PLAINTEXT" || proto == "SASL_SSL") {
		return nil, fail(2, "security.protocol %s needs a SASL mechanism (--sasl-mechanism or sasl.mechanism)", proto)
	}
	if mech != "" {
		if user == "" || pass == "" {
			return nil, fail(2, "--sasl-mechanism %s needs --sasl-user and --sasl-password (or TLOG_SASL_USER and TLOG_SASL_PASSWORD)", mech)
		}
		switch mech {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, fail(2, "bad --sasl-mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
		}
	}
	return opts, nil
}
