package agent

// The admin listener (Config.AdminListen) serves /metrics for Prometheus,
// /healthz (the process is up), /readyz (the agent can serve) and, only
// with Config.AdminPprof, Go's profiles under /debug/pprof/ (so a slow
// path can be profiled where it runs). With Config.AdminToken every path
// but /healthz and /readyz needs "Authorization: Bearer TOKEN" (probes
// stay open: they say only up or not). It is bound first thing in Start,
// so probes answer while the agent waits for the controller lease or
// replays its WAL; /readyz says why it is not ready.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlog-io/tlog/agent/wal"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type adminServer struct {
	ln        net.Listener
	srv       *http.Server
	done      chan struct{}
	stopOnce  sync.Once
	recovered atomic.Bool // the WAL is replayed; a.wal and a.meta are set
}

// startAdmin binds and serves the admin listener, if configured.
func (a *Agent) startAdmin() error {
	if a.cfg.AdminListen == "" || a.obs == nil {
		return nil
	}
	ad := &a.obs.admin
	ln, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("agent: admin listen on %s: %w", a.cfg.AdminListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.obs.reg, promhttp.HandlerOpts{
		Registry:          a.obs.reg, // counts its own errors there
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := a.readiness(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if a.cfg.AdminPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	var handler http.Handler = mux
	if token := a.cfg.AdminToken; token != "" {
		want := []byte("Bearer " + token)
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" &&
				subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tlog"`)
				http.Error(w, "unauthorized: send Authorization: Bearer <the --admin-token>", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	ad.ln = ln
	ad.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ad.done = make(chan struct{})
	go func() {
		defer close(ad.done)
		if err := ad.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("admin listener stopped", "err", err)
		}
	}()
	a.log.Info("admin listener", "addr", ln.Addr().String())
	return nil
}

// stopAdmin closes the admin listener and its connections; it may be
// called more than once.
func (a *Agent) stopAdmin() {
	if a.obs == nil {
		return
	}
	ad := &a.obs.admin
	ad.stopOnce.Do(func() {
		if ad.srv == nil {
			return
		}
		ad.srv.Close()
		<-ad.done
	})
}

// markRecovered is called once the WAL is replayed: from then on the
// agent's own counters are exported and /readyz may answer 200.
func (a *Agent) markRecovered() {
	if a.obs == nil {
		return
	}
	a.obs.reg.MustRegister(agentCollector{a})
	a.obs.admin.recovered.Store(true)
}

// readiness says whether the agent can serve, and if not, why. A single
// agent (tlog dev) must hold the controller lease: it journals its own
// flushes and metadata changes. Agents that follow another controller
// arrive with the cluster change and will be ready while they do.
// Ready reports what /readyz answers: whether the agent can serve, and if
// not, why.
func (a *Agent) Ready() (bool, string) { return a.readiness() }

func (a *Agent) readiness() (bool, string) {
	if !a.obs.admin.recovered.Load() {
		return false, "starting: taking the controller lease and replaying the write-ahead log"
	}
	if a.ctx.Err() != nil {
		return false, "shutting down"
	}
	if n := a.partitionsAwaitingEpoch(); n > 0 {
		// Metadata names it leader of these, but at epochs from before
		// it restarted: it refuses them until the controller gives new
		// ones, so it cannot serve them yet.
		return false, fmt.Sprintf("waiting for new leader epochs for %d partitions it led before restarting", n)
	}
	if a.meta.IsController() {
		return true, ""
	}
	if a.standalone() {
		if id := a.meta.ControllerID(); id >= 0 && id != a.cfg.ID {
			return false, fmt.Sprintf("not the controller (agent %d last held the lease)", id)
		}
		return false, "not the controller: the lease lapsed or could not be renewed"
	}
	info, ok := a.meta.State().Agents[a.cfg.ID]
	switch {
	case !ok || info.Incarnation != a.incarnation:
		return false, "not registered by a controller yet"
	case info.Fenced:
		return false, "fenced by the controller (it has not heard this agent's heartbeats)"
	}
	if silent := a.cfg.Clock.Now().Sub(a.client.lastAnswered()); silent > a.cfg.SessionTimeout {
		return false, fmt.Sprintf("no heartbeat answered by the controller (agent %d) for %v", a.meta.ControllerID(), silent.Round(time.Second))
	}
	return true, ""
}

// AdminAddr is the address the admin listener is bound to, or "" when
// Config.AdminListen is empty.
func (a *Agent) AdminAddr() string {
	if a.obs == nil || a.obs.admin.ln == nil {
		return ""
	}
	return a.obs.admin.ln.Addr().String()
}

// partitionsAwaitingEpoch counts the partitions metadata names this agent
// leader of at an epoch given before this process started.
func (a *Agent) partitionsAwaitingEpoch() int {
	n := 0
	for _, mt := range a.meta.State().Topics {
		for i := range mt.Partitions {
			if a.awaitingEpoch(&mt.Partitions[i], wal.NewPartKey(mt.ID, int32(i))) {
				n++
			}
		}
	}
	return n
}
