// Command sample is the service that Maestro's examples, demo and e2e tests run on real pods, under many image
// names. It serves the same HTTP handlers on $PORT and on every port in $LISTEN_PORTS; docs/images.md lists
// its endpoints and environment variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// terminationLog is where the kubelet looks for a container's last words (terminationMessagePath's default).
const terminationLog = "/dev/termination-log"

func main() {
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	exit := exitWith(terminationLog)
	hostname, _ := os.Hostname()
	cfg, err := loadConfig(os.Getenv, hostname)
	if err != nil {
		exit(1, err.Error())
	}
	if isTask(os.Args[0]) {
		log.Printf("task %q: exiting with status %d in %s", os.Args, cfg.exitCode, cfg.exitAfter)
		time.Sleep(cfg.exitAfter)
		exit(cfg.exitCode, taskReason(os.Args, os.Getenv("EXIT_MESSAGE")))
	}
	if cfg.failAtStart {
		exit(1, "FAIL_AT_START is set: failing at start as asked")
	}
	if cfg.crashAfter > 0 {
		time.AfterFunc(cfg.crashAfter, func() {
			exit(1, fmt.Sprintf("CRASH_AFTER_SECONDS: crashing %s after start as asked", cfg.crashAfter))
		})
	}
	if cfg.exitAfter > 0 {
		time.AfterFunc(cfg.exitAfter, func() { exit(cfg.exitCode, cfg.exitMessage) })
	}
	s := newServer(cfg, os.Args[1:], os.Environ, exit)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Printf("starting %s, version %q: ports %v, ready after %s, args %q", cfg.name, cfg.version, cfg.ports, cfg.readyAfter, os.Args[1:])
	if err := serve(ctx, cfg.ports, s.routes()); err != nil {
		exit(1, err.Error())
	}
	log.Printf("%s stopped on a signal", cfg.name)
}

// isTask tells whether the binary was called by a task's name: the image's /app/manage link, which the examples'
// jobs run (`/app/manage migrate`). Then it serves nothing: it waits EXIT_AFTER_SECONDS and exits with EXIT_CODE.
func isTask(argv0 string) bool {
	return filepath.Base(argv0) == "manage"
}

// taskReason is a task's termination message: EXIT_MESSAGE, or what it was asked to do.
func taskReason(args []string, message string) string {
	if message != "" {
		return message
	}
	return strings.Join(args, " ") + ": done"
}

// exitWith returns the function that ends the process: a log line, the reason in the termination log, a status.
func exitWith(path string) func(code int, reason string) {
	return func(code int, reason string) {
		log.Printf("exiting with status %d: %s", code, reason)
		if err := writeTerminationLog(path, reason); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Printf("termination log not written: %v", err)
		}
		os.Exit(code)
	}
}

// writeTerminationLog writes only into an existing file: outside a pod the path is the host's /dev.
func writeTerminationLog(path, reason string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(reason + "\n")
	return errors.Join(err, f.Close())
}

// serve runs one HTTP server per port until ctx ends (then shuts them down) or one of them fails.
func serve(ctx context.Context, ports []int, handler http.Handler) error {
	listeners, err := listen(ports)
	if err != nil {
		return err
	}
	failed := make(chan error, len(listeners))
	servers := make([]*http.Server, 0, len(listeners))
	for _, ln := range listeners {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { failed <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
		shutdown(servers)
		return nil
	case err := <-failed:
		shutdown(servers)
		return err
	}
}

// listen binds every port before serving any, so a taken port fails the start rather than half of it.
func listen(ports []int) ([]net.Listener, error) {
	listeners := make([]net.Listener, 0, len(ports))
	for _, port := range ports {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			for _, open := range listeners {
				_ = open.Close()
			}
			return nil, err
		}
		listeners = append(listeners, ln)
	}
	return listeners, nil
}

func shutdown(servers []*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(ctx)
	}
}
