package agent

// The agent's Kafka ports: one per --listener (or the one --listen port),
// each with its security protocol; TLS certificates read from files and
// read again when the files change; the bootstrap SCRAM user.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/metadata"
)

type kafkaListener struct {
	ln   net.Listener
	l    kafka.Listener
	addr string // advertised
}

// openListeners binds every Kafka port; the first is a.ln.
func (a *Agent) openListeners() error {
	specs := a.cfg.Listeners
	if len(specs) == 0 {
		specs = []kafka.ListenerSpec{{Name: kafka.Plaintext, Protocol: kafka.Plaintext, Addr: a.cfg.Listen}}
	}
	var tlsConf *tls.Config
	names := map[string]bool{}
	for _, s := range specs {
		if names[s.Name] {
			return fmt.Errorf("agent: listener name %s given twice", s.Name)
		}
		names[s.Name] = true
		l := kafka.Listener{Name: s.Name, Protocol: s.Protocol}
		if l.Secure() && tlsConf == nil {
			var err error
			if tlsConf, err = a.tlsConfig(); err != nil {
				return err
			}
		}
		if l.Secure() {
			l.TLS = tlsConf.Clone()
			if a.cfg.TLSClientCAFile != "" && !l.SASL() {
				l.TLS.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			a.closeListeners()
			return fmt.Errorf("agent: listen on %s (%s): %w", s.Addr, s.Name, err)
		}
		addr := ln.Addr().String()
		if s.Advertise != "" {
			addr = s.Advertise
		}
		a.kafkaLns = append(a.kafkaLns, kafkaListener{ln: ln, l: l, addr: addr})
	}
	a.ln = a.kafkaLns[0].ln
	if a.cfg.Advertise == "" {
		a.cfg.Advertise = a.kafkaLns[0].addr
	}
	a.kafkaLns[0].addr = a.cfg.Advertise
	if len(a.cfg.Listeners) > 0 {
		m := map[string]string{}
		for _, kl := range a.kafkaLns {
			m[kl.l.Name] = kl.addr
		}
		a.listenersAdvertised = metadata.EncodeListeners(m)
	}
	return nil
}

func (a *Agent) closeListeners() {
	for _, kl := range a.kafkaLns {
		kl.ln.Close()
	}
}

// serveListeners hands every port to the front end.
func (a *Agent) serveListeners() {
	for _, kl := range a.kafkaLns {
		a.front.ServeListener(kl.ln, kl.l)
	}
}

// KafkaAddrs maps each listener name to its bound address.
func (a *Agent) KafkaAddrs() map[string]string {
	m := map[string]string{}
	for _, kl := range a.kafkaLns {
		m[kl.l.Name] = kl.ln.Addr().String()
	}
	return m
}

// tlsConfig is the TLS side of SSL and SASL_SSL listeners: TLS 1.2 and
// up, the certificate from TLSCertFile/TLSKeyFile (read again once the
// files change), and TLSClientCAFile's CAs for client certificates.
func (a *Agent) tlsConfig() (*tls.Config, error) {
	if a.cfg.TLSCertFile == "" || a.cfg.TLSKeyFile == "" {
		return nil, errors.New("agent: an SSL or SASL_SSL listener needs --tls-cert and --tls-key")
	}
	r := &certReloader{cert: a.cfg.TLSCertFile, key: a.cfg.TLSKeyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	conf := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
	}
	if a.cfg.TLSClientCAFile != "" {
		pem, err := os.ReadFile(a.cfg.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("agent: client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent: client CA bundle %s holds no PEM certificate", a.cfg.TLSClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return conf, nil
}

// certReloader serves a certificate from files, loading them again when
// either changes (checked at most once a second), so a renewed
// certificate is served without a restart. A renewal that fails to load
// keeps the previous certificate (and is retried).
type certReloader struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   [2]time.Time // modification times loaded
	checked time.Time
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current != nil && time.Since(r.checked) < time.Second {
		return r.current, nil
	}
	r.checked = time.Now()
	var stamp [2]time.Time
	for i, f := range []string{r.cert, r.key} {
		fi, err := os.Stat(f)
		if err != nil {
			if r.current != nil {
				return r.current, nil
			}
			return nil, fmt.Errorf("agent: TLS: %w", err)
		}
		stamp[i] = fi.ModTime()
	}
	if r.current != nil && stamp == r.stamp {
		return r.current, nil
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.current != nil {
			return r.current, nil
		}
		return nil, fmt.Errorf("agent: TLS certificate: %w", err)
	}
	r.current, r.stamp = &c, stamp
	return r.current, nil
}

// superUsers are the configured super users and the bootstrap user.
func (a *Agent) superUsers() []string {
	out := append([]string(nil), a.cfg.SuperUsers...)
	if a.cfg.BootstrapUser != "" {
		out = append(out, "User:"+a.cfg.BootstrapUser)
	}
	return out
}

// ensureBootstrapUser creates (or resets) the bootstrap SCRAM user with
// both mechanisms, retrying until a controller takes it.
func (a *Agent) ensureBootstrapUser() {
	if a.cfg.BootstrapUser == "" {
		return
	}
	var cmds []metadata.Command
	for _, mech := range []string{metadata.ScramSHA512, metadata.ScramSHA256} {
		cr, err := NewScramCredential(mech, a.cfg.BootstrapPassword)
		if err != nil {
			a.log.Error("bootstrap user", "err", err)
			return
		}
		cmds = append(cmds, metadata.SetScramCredential{User: a.cfg.BootstrapUser, Mechanism: mech, Credential: cr})
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
		_, err := a.propose(ctx, cmds...)
		cancel()
		if err == nil {
			a.log.Info("bootstrap user ready", "user", a.cfg.BootstrapUser)
			return
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// NewScramCredential salts and iterates password for mechanism (a random
// 32-byte salt, 8,192 iterations) into the form the journal keeps.
func NewScramCredential(mechanism, password string) (metadata.ScramCredential, error) {
	hash := scram.SHA256
	if mechanism == metadata.ScramSHA512 {
		hash = scram.SHA512
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return metadata.ScramCredential{}, err
	}
	cl, err := hash.NewClient("", password, "")
	if err != nil {
		return metadata.ScramCredential{}, fmt.Errorf("%s credential: %w", mechanism, err)
	}
	const iterations = 8192
	sc := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	return metadata.ScramCredential{Iterations: iterations, Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}
