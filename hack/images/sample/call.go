package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// callTimeout bounds one hop; a call that goes N hops deeper gets N+1 times as long.
	callTimeout   = 2 * time.Second
	maxCallDepth  = 5
	maxReplyBytes = 1 << 20
)

// callResult is what one dependency answered. Calls holds the callee's own calls when asked for depth.
type callResult struct {
	URL     string                `json:"url"`
	OK      bool                  `json:"ok"`
	Status  int                   `json:"status,omitempty"`
	Error   string                `json:"error,omitempty"`
	Name    string                `json:"name,omitempty"`
	Version string                `json:"version,omitempty"`
	Calls   map[string]callResult `json:"calls,omitempty"`
}

// callReport is GET /call's body: this service, and each of its *_URL variables' answers.
type callReport struct {
	Name    string                `json:"name"`
	Version string                `json:"version"`
	OK      bool                  `json:"ok"`
	Calls   map[string]callResult `json:"calls"`
}

func (s *server) handleCall(w http.ResponseWriter, r *http.Request) {
	depth := 0
	if value := r.URL.Query().Get("depth"); value != "" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > maxCallDepth {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("want ?depth=N, N from 0 to %d", maxCallDepth))
			return
		}
		depth = n
	}
	calls := callAll(r.Context(), dependencyURLs(s.environ()), depth)
	writeJSON(w, http.StatusOK, callReport{Name: s.cfg.name, Version: s.cfg.version, OK: allOK(calls), Calls: calls})
}

// dependencyURLs picks the variables Maestro injects per dependency (<DEP>_URL), and any other HTTP *_URL;
// others (postgres://...) name protocols this service does not speak.
func dependencyURLs(environ []string) map[string]string {
	urls := map[string]string{}
	for name, value := range envMap(environ) {
		isHTTP := strings.HasPrefix(value, "http://") || strings.HasPrefix(value, "https://")
		if strings.HasSuffix(name, "_URL") && isHTTP {
			urls[name] = value
		}
	}
	return urls
}

func callAll(ctx context.Context, urls map[string]string, depth int) map[string]callResult {
	results := make(map[string]callResult, len(urls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, url := range urls {
		wg.Go(func() {
			result := callOne(ctx, url, depth)
			mu.Lock()
			results[name] = result
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// callOne asks the callee for /info, or for its own /call one level shallower.
func callOne(ctx context.Context, url string, depth int) callResult {
	result := callResult{URL: url}
	target := strings.TrimRight(url, "/") + "/info"
	if depth > 0 {
		target = strings.TrimRight(url, "/") + "/call?depth=" + strconv.Itoa(depth-1)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout*time.Duration(depth+1))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		result.Error = err.Error()
		return result
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		result.Error = err.Error()
		return result
	}
	defer resp.Body.Close()
	result.Status = resp.StatusCode
	var reply callReport
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err == nil {
		err = json.Unmarshal(body, &reply)
	}
	if err != nil {
		result.Error = fmt.Sprintf("reply is not the sample service's JSON: %v", err)
		return result
	}
	result.Name, result.Version, result.Calls = reply.Name, reply.Version, reply.Calls
	result.OK = resp.StatusCode == http.StatusOK && (depth == 0 || reply.OK)
	return result
}

func allOK(calls map[string]callResult) bool {
	for _, call := range calls {
		if !call.OK {
			return false
		}
	}
	return true
}
