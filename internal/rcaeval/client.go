package rcaeval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// API asks POST /api/v1/rca of an Aftertrace query API.
type API struct {
	Base   string // e.g. http://127.0.0.1:8080
	Key    string // tenant API key (Bearer)
	Client *http.Client
}

// Ask implements Asker.
func (a API) Ask(ctx context.Context, start, end time.Time) (Answer, error) {
	client := a.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	body, _ := json.Marshal(map[string]string{"start": start.UTC().Format(time.RFC3339Nano), "end": end.UTC().Format(time.RFC3339Nano)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.Base, "/")+"/api/v1/rca", bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Key != "" {
		req.Header.Set("Authorization", "Bearer "+a.Key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var r struct {
		Candidates []Candidate `json:"candidates"`
		Status     string      `json:"status"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Answer{}, fmt.Errorf("decode answer: %w", err)
	}
	return Answer{Candidates: r.Candidates, Status: r.Status}, nil
}
