package main

import (
	"encoding/json"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Readiness overrides set by POST /ready and POST /unready; until then READY_AFTER_SECONDS decides.
const (
	readinessAuto int32 = iota
	readinessForcedReady
	readinessForcedUnready
)

const maxBurn = time.Minute

type server struct {
	cfg       config
	args      []string
	environ   func() []string
	exit      func(code int, reason string)
	now       func() time.Time
	started   time.Time
	readiness atomic.Int32
	// crashDelay lets POST /crash send its response before the process goes.
	crashDelay time.Duration
}

func newServer(cfg config, args []string, environ func() []string, exit func(int, string)) *server {
	return &server{
		cfg: cfg, args: args, environ: environ, exit: exit,
		now: time.Now, started: time.Now(), crashDelay: 100 * time.Millisecond,
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /info", s.handleInfo)
	for _, path := range []string{"/healthz", "/readyz", "/ready"} {
		mux.HandleFunc("GET "+path, s.handleReadiness)
	}
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("POST /ready", s.handleSetReadiness(readinessForcedReady))
	mux.HandleFunc("POST /unready", s.handleSetReadiness(readinessForcedUnready))
	mux.HandleFunc("POST /crash", s.handleCrash)
	mux.HandleFunc("GET /call", s.handleCall)
	mux.HandleFunc("GET /burn", s.handleBurn)
	return logRequests(mux)
}

func (s *server) ready() bool {
	switch s.readiness.Load() {
	case readinessForcedReady:
		return true
	case readinessForcedUnready:
		return false
	}
	return s.now().Sub(s.started) >= s.cfg.readyAfter
}

func (s *server) handleReadiness(w http.ResponseWriter, _ *http.Request) {
	if s.ready() {
		writeText(w, http.StatusOK, "ok")
		return
	}
	writeText(w, http.StatusServiceUnavailable, "not ready")
}

func (s *server) handleSetReadiness(state int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.readiness.Store(state)
		s.handleReadiness(w, r)
	}
}

type info struct {
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	Ready         bool              `json:"ready"`
	UptimeSeconds float64           `json:"uptimeSeconds"`
	Ports         []int             `json:"ports"`
	UID           int               `json:"uid"`
	GID           int               `json:"gid"`
	Args          []string          `json:"args"`
	Env           map[string]string `json:"env"`
	Config        map[string]string `json:"config"`
}

func (s *server) info() info {
	return info{
		Name: s.cfg.name, Version: s.cfg.version, Ready: s.ready(),
		UptimeSeconds: s.now().Sub(s.started).Seconds(), Ports: s.cfg.ports,
		UID: os.Getuid(), GID: os.Getgid(), Args: s.args,
		Env: envMap(s.environ()), Config: readConfigDirs(s.cfg.configDirs),
	}
}

func (s *server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.info())
}

// handleRoot answers like /info, but 503 while unready: examples probe readiness on / too.
func (s *server) handleRoot(w http.ResponseWriter, _ *http.Request) {
	body := s.info()
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

func (s *server) handleCrash(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "crashing")
	_ = http.NewResponseController(w).Flush()
	go func() {
		time.Sleep(s.crashDelay)
		s.exit(1, "POST /crash: crashing as asked")
	}()
}

func (s *server) handleBurn(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxBurn {
		writeText(w, http.StatusBadRequest, "want ?ms=N, N from 0 to 60000")
		return
	}
	burn(time.Duration(ms) * time.Millisecond)
	writeJSON(w, http.StatusOK, map[string]int{"burnedMs": ms})
}

// burn keeps one core busy for d; the result is returned so the loop is not optimised away.
func burn(d time.Duration) uint64 {
	deadline := time.Now().Add(d)
	var x uint64
	for time.Now().Before(deadline) {
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

func envMap(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, entry := range environ {
		name, value, _ := strings.Cut(entry, "=")
		env[name] = value
	}
	return env
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", "  ")
	_ = encoder.Encode(body)
}

// statusRecorder keeps the status for the log line; Unwrap lets http.ResponseController reach the real writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		started := time.Now()
		next.ServeHTTP(recorder, r)
		log.Printf("%s %s %s %d %s port %s from %s", started.UTC().Format(time.RFC3339), r.Method,
			r.URL.RequestURI(), recorder.status, time.Since(started).Round(time.Microsecond), localPort(r), r.RemoteAddr)
	})
}

func localPort(r *http.Request) string {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "?"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return port
}
