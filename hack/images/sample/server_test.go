package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeClock is a server's clock that the test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newTestServer(t *testing.T, cfg config, env ...string) (*server, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := newServer(cfg, nil, func() []string { return env }, func(code int, reason string) {
		t.Errorf("unexpected exit %d: %s", code, reason)
	})
	s.now, s.started = clock.Now, clock.now
	return s, clock
}

func do(t *testing.T, handler http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, httptest.NewRequest(method, path, nil))
	return recorder
}

func decode[T any](t *testing.T, recorder *httptest.ResponseRecorder) T {
	t.Helper()
	var body T
	if err := json.Unmarshal(recorder.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, recorder.Body)
	}
	return body
}

func TestReadinessWaitsForReadyAfterThenToggles(t *testing.T) {
	s, clock := newTestServer(t, config{name: "catalog", readyAfter: 10 * time.Second})
	h := s.routes()
	expect := func(step string, want int) {
		t.Helper()
		for _, path := range []string{"/healthz", "/readyz", "/ready", "/"} {
			if got := do(t, h, "GET", path).Code; got != want {
				t.Errorf("%s: GET %s = %d, want %d", step, path, got, want)
			}
		}
		if got := do(t, h, "GET", "/info").Code; got != http.StatusOK {
			t.Errorf("%s: GET /info = %d, want 200 whatever the readiness", step, got)
		}
	}
	expect("at start", http.StatusServiceUnavailable)
	clock.now = clock.now.Add(9 * time.Second)
	expect("after 9s", http.StatusServiceUnavailable)
	clock.now = clock.now.Add(time.Second)
	expect("after 10s", http.StatusOK)
	if got := do(t, h, "POST", "/unready").Code; got != http.StatusServiceUnavailable {
		t.Errorf("POST /unready = %d, want 503 (the new state)", got)
	}
	expect("after POST /unready", http.StatusServiceUnavailable)
	do(t, h, "POST", "/ready")
	expect("after POST /ready", http.StatusOK)
}

func TestPostReadyOverridesTheStartDelay(t *testing.T) {
	s, _ := newTestServer(t, config{readyAfter: time.Hour})
	h := s.routes()
	do(t, h, "POST", "/ready")
	if got := do(t, h, "GET", "/healthz").Code; got != http.StatusOK {
		t.Errorf("GET /healthz = %d after POST /ready, want 200", got)
	}
}

func TestLivezStaysUpWhileUnready(t *testing.T) {
	s, _ := newTestServer(t, config{readyAfter: time.Hour})
	if got := do(t, s.routes(), "GET", "/livez").Code; got != http.StatusOK {
		t.Errorf("GET /livez = %d, want 200", got)
	}
}

func TestInfoShowsNameVersionEnvAndConfigFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.properties"), "color=blue\n")
	write(t, filepath.Join(dir, "nested", "db.yaml"), "host: db\n")
	write(t, filepath.Join(dir, "big.bin"), strings.Repeat("x", maxConfigFileBytes+1))
	// A ConfigMap volume as the kubelet writes it: keys are symlinks into ..data, itself a symlink.
	write(t, filepath.Join(dir, "..2024_01_01", "mode"), "fast")
	symlink(t, "..2024_01_01", filepath.Join(dir, "..data"))
	symlink(t, filepath.Join("..data", "mode"), filepath.Join(dir, "mode"))

	s, _ := newTestServer(t, config{name: "catalog", version: "1.4.2", ports: []int{8080, 3000}, configDirs: []string{dir}},
		"LOG_LEVEL=debug", "DATABASE_URL=postgres://db:5432/x?a=b")
	got := decode[info](t, do(t, s.routes(), "GET", "/info"))

	if got.Name != "catalog" || got.Version != "1.4.2" || !reflect.DeepEqual(got.Ports, []int{8080, 3000}) {
		t.Errorf("name, version, ports = %q %q %v", got.Name, got.Version, got.Ports)
	}
	wantEnv := map[string]string{"LOG_LEVEL": "debug", "DATABASE_URL": "postgres://db:5432/x?a=b"}
	if !reflect.DeepEqual(got.Env, wantEnv) {
		t.Errorf("env = %v, want %v", got.Env, wantEnv)
	}
	wantConfig := map[string]string{
		filepath.Join(dir, "app.properties"): "color=blue\n",
		filepath.Join(dir, "nested/db.yaml"): "host: db\n",
		filepath.Join(dir, "big.bin"):        "(65537 bytes: larger than 65536, not shown)",
		filepath.Join(dir, "mode"):           "fast",
	}
	if !reflect.DeepEqual(got.Config, wantConfig) {
		t.Errorf("config = %v\nwant %v", got.Config, wantConfig)
	}
}

func TestInfoWithoutConfigDirHasNoFiles(t *testing.T) {
	s, _ := newTestServer(t, config{configDirs: []string{"/nonexistent/config"}})
	if got := decode[info](t, do(t, s.routes(), "GET", "/info")); len(got.Config) != 0 {
		t.Errorf("config = %v, want none", got.Config)
	}
}

// sampleServer runs a sample service on a real port, as a dependency to call.
func sampleServer(t *testing.T, name, version string, env ...string) *httptest.Server {
	t.Helper()
	s, _ := newTestServer(t, config{name: name, version: version}, env...)
	srv := httptest.NewServer(s.routes())
	t.Cleanup(srv.Close)
	return srv
}

func TestCallReportsEveryURLVariable(t *testing.T) {
	catalog := sampleServer(t, "catalog", "1.4.2")
	s, _ := newTestServer(t, config{name: "web", version: "2.0.0"},
		"CATALOG_URL="+catalog.URL, "GHOST_URL=http://127.0.0.1:1", "CATALOG_HOST=ignored",
		"DATABASE_URL=postgres://db:5432/catalog")
	report := decode[callReport](t, do(t, s.routes(), "GET", "/call"))

	if report.Name != "web" || report.OK {
		t.Errorf("report name %q ok %v, want web and false (GHOST_URL fails)", report.Name, report.OK)
	}
	catalogCall := report.Calls["CATALOG_URL"]
	want := callResult{URL: catalog.URL, OK: true, Status: 200, Name: "catalog", Version: "1.4.2"}
	if !reflect.DeepEqual(catalogCall, want) {
		t.Errorf("CATALOG_URL = %+v, want %+v", catalogCall, want)
	}
	ghost := report.Calls["GHOST_URL"]
	if ghost.OK || ghost.Status != 0 || !strings.Contains(ghost.Error, "refused") {
		t.Errorf("GHOST_URL = %+v, want a connection error", ghost)
	}
	if len(report.Calls) != 2 {
		t.Errorf("calls = %v, want CATALOG_URL and GHOST_URL only (not the postgres:// one)", report.Calls)
	}
}

func TestCallWithDepthFollowsTheChain(t *testing.T) {
	db := sampleServer(t, "db", "15.6")
	catalog := sampleServer(t, "catalog", "1.4.2", "DB_URL="+db.URL)
	s, _ := newTestServer(t, config{name: "web", version: "2.0.0"}, "CATALOG_URL="+catalog.URL+"/")
	h := s.routes()

	report := decode[callReport](t, do(t, h, "GET", "/call?depth=1"))
	dbCall := report.Calls["CATALOG_URL"].Calls["DB_URL"]
	if !report.OK || dbCall.Name != "db" || dbCall.Version != "15.6" || !dbCall.OK {
		t.Errorf("depth 1: report %+v", report)
	}
	shallow := decode[callReport](t, do(t, h, "GET", "/call"))
	if calls := shallow.Calls["CATALOG_URL"].Calls; calls != nil {
		t.Errorf("depth 0 went deeper: %v", calls)
	}
	if got := do(t, h, "GET", "/call?depth=99").Code; got != http.StatusBadRequest {
		t.Errorf("depth 99: %d, want 400", got)
	}
}

func TestCallReportsAnUnhealthyOrForeignCallee(t *testing.T) {
	unready := sampleServer(t, "db", "1")
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>"))
	}))
	t.Cleanup(foreign.Close)
	s, _ := newTestServer(t, config{}, "DB_URL="+unready.URL, "OTHER_URL="+foreign.URL)
	report := decode[callReport](t, do(t, s.routes(), "GET", "/call"))
	if other := report.Calls["OTHER_URL"]; other.OK || other.Status != 200 || !strings.Contains(other.Error, "JSON") {
		t.Errorf("OTHER_URL = %+v", other)
	}
}

func TestCrashExitsWithStatusOne(t *testing.T) {
	s, _ := newTestServer(t, config{})
	exits := make(chan int, 1)
	s.exit = func(code int, _ string) { exits <- code }
	s.crashDelay = 0
	if got := do(t, s.routes(), "POST", "/crash").Code; got != http.StatusOK {
		t.Errorf("POST /crash = %d", got)
	}
	select {
	case code := <-exits:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("POST /crash did not exit")
	}
}

func TestBurnTakesAsLongAsAsked(t *testing.T) {
	s, _ := newTestServer(t, config{})
	started := time.Now()
	recorder := do(t, s.routes(), "GET", "/burn?ms=30")
	if recorder.Code != http.StatusOK || time.Since(started) < 30*time.Millisecond {
		t.Errorf("GET /burn?ms=30 = %d after %s", recorder.Code, time.Since(started))
	}
	if got := do(t, s.routes(), "GET", "/burn?ms=-1").Code; got != http.StatusBadRequest {
		t.Errorf("GET /burn?ms=-1 = %d, want 400", got)
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	s, _ := newTestServer(t, config{})
	if got := do(t, s.routes(), "GET", "/nope").Code; got != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", got)
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"PORT": "3000", "LISTEN_PORTS": "8080, 3000,,9090", "READY_AFTER_SECONDS": "1.5",
		"CRASH_AFTER_SECONDS": "30", "FAIL_AT_START": "0", "CONFIG_DIR": "/etc/a:/etc/b", "VERSION": "1.0",
		"EXIT_AFTER_SECONDS": "2", "EXIT_CODE": "3", "EXIT_MESSAGE": "migration failed",
	}
	cfg, err := loadConfig(func(name string) string { return env[name] }, "pod-abc")
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		name: "pod-abc", version: "1.0", ports: []int{3000, 8080, 9090}, readyAfter: 1500 * time.Millisecond,
		crashAfter: 30 * time.Second, configDirs: []string{"/etc/a", "/etc/b"},
		exitAfter: 2 * time.Second, exitCode: 3, exitMessage: "migration failed",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config = %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigDefaultsAndErrors(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" }, "host")
	if err != nil || !reflect.DeepEqual(cfg.ports, []int{8080}) || cfg.name != "host" || len(cfg.configDirs) != 0 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	for name, value := range map[string]string{
		"PORT": "http", "LISTEN_PORTS": "70000", "READY_AFTER_SECONDS": "-1", "FAIL_AT_START": "maybe",
		"EXIT_CODE": "300", "EXIT_AFTER_SECONDS": "soon",
	} {
		if _, err := loadConfig(func(n string) string { return map[string]string{name: value}[n] }, "h"); err == nil {
			t.Errorf("%s=%s: no error", name, value)
		}
	}
}

func TestTerminationLogIsWrittenOnlyIntoAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "termination-log")
	write(t, existing, "old and longer text")
	if err := writeTerminationLog(existing, "crashed"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(existing); string(got) != "crashed\n" {
		t.Errorf("termination log = %q", got)
	}
	missing := filepath.Join(dir, "missing")
	if err := writeTerminationLog(missing, "crashed"); err == nil {
		t.Error("wrote a missing termination log")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("created the termination log")
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestTaskMode(t *testing.T) {
	for argv0, want := range map[string]bool{"/app/manage": true, "manage": true, "/sample": false, "/app/managed": false} {
		if got := isTask(argv0); got != want {
			t.Errorf("isTask(%q) = %v, want %v", argv0, got, want)
		}
	}
	if got := taskReason([]string{"/app/manage", "migrate", "--no-input"}, ""); got != "/app/manage migrate --no-input: done" {
		t.Errorf("taskReason = %q", got)
	}
	if got := taskReason([]string{"/app/manage"}, "schema is current"); got != "schema is current" {
		t.Errorf("taskReason with EXIT_MESSAGE = %q", got)
	}
}
