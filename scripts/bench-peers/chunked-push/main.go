// chunked-push: the push benchmark's Go peer for chunked uploads (src/bench/push-bench.ts, tool
// `go-chunked`). It pushes the only image of an OCI layout to a plain-HTTP registry the way our client
// does by default: HEAD each blob, blobs up to the threshold in one PUT, larger ones POSTed and then
// sent in PATCHes of a fixed size (Content-Range, following each answer's Location), committed with an
// empty PUT ?digest=, and the manifest last. No hashing, no retries, no progress: the least a client can
// do in that protocol, so that the bench can tell the cost of the chunks (paid by the registry) from the
// cost of our client.
//
//	chunked-push LAYOUT HOST REPOSITORY TAG CHUNK_BYTES [THRESHOLD_BYTES]
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type pusher struct {
	layout    string
	base      *url.URL
	chunk     int64
	threshold int64
	client    *http.Client
}

func (p *pusher) blobPath(digest string) string {
	return filepath.Join(p.layout, "blobs", strings.Replace(digest, ":", string(filepath.Separator), 1))
}

func (p *pusher) do(method string, u *url.URL, body io.Reader, size int64, header map[string]string, want ...int) (*http.Response, error) {
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	for _, code := range want {
		if res.StatusCode == code {
			return res, nil
		}
	}
	return nil, fmt.Errorf("%s %s: HTTP %d", method, u.Path, res.StatusCode)
}

func (p *pusher) next(res *http.Response) (*url.URL, error) {
	loc := res.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: no Location", res.Request.Method, res.Request.URL.Path)
	}
	return res.Request.URL.Parse(loc)
}

func (p *pusher) pushBlob(d descriptor) error {
	head, err := http.NewRequest(http.MethodHead, p.base.JoinPath("blobs", d.Digest).String(), nil)
	if err != nil {
		return err
	}
	if res, err := p.client.Do(head); err != nil {
		return err
	} else if res.Body.Close(); res.StatusCode == http.StatusOK {
		return nil
	}
	file, err := os.Open(p.blobPath(d.Digest))
	if err != nil {
		return err
	}
	defer file.Close()
	res, err := p.do(http.MethodPost, p.base.JoinPath("blobs", "uploads/"), nil, 0, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	at, err := p.next(res)
	if err != nil {
		return err
	}
	octets := map[string]string{"Content-Type": "application/octet-stream"}
	var body io.Reader
	var bodySize int64
	if d.Size <= p.threshold {
		body, bodySize = io.NewSectionReader(file, 0, d.Size), d.Size
	} else {
		for offset := int64(0); offset < d.Size; offset += p.chunk {
			n := min(p.chunk, d.Size-offset)
			header := map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", offset, offset+n-1),
			}
			res, err := p.do(http.MethodPatch, at, io.NewSectionReader(file, offset, n), n, header, http.StatusAccepted, http.StatusNoContent)
			if err != nil {
				return err
			}
			if at, err = p.next(res); err != nil {
				return err
			}
		}
	}
	query := at.Query()
	query.Set("digest", d.Digest)
	commit := *at
	commit.RawQuery = query.Encode()
	_, err = p.do(http.MethodPut, &commit, body, bodySize, octets, http.StatusCreated, http.StatusNoContent)
	return err
}

func run(args []string) error {
	if len(args) < 5 {
		return fmt.Errorf("usage: chunked-push LAYOUT HOST REPOSITORY TAG CHUNK_BYTES [THRESHOLD_BYTES]")
	}
	chunk, err := strconv.ParseInt(args[4], 10, 64)
	if err != nil || chunk <= 0 {
		return fmt.Errorf("CHUNK_BYTES %q is no positive number", args[4])
	}
	threshold := int64(128 << 20)
	if len(args) > 5 {
		if threshold, err = strconv.ParseInt(args[5], 10, 64); err != nil {
			return fmt.Errorf("THRESHOLD_BYTES %q is no number", args[5])
		}
	}
	p := &pusher{
		layout:    args[0],
		base:      &url.URL{Scheme: "http", Host: args[1], Path: "/v2/" + args[2]},
		chunk:     chunk,
		threshold: threshold,
		client:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 5}},
	}
	var index struct{ Manifests []descriptor }
	if raw, err := os.ReadFile(filepath.Join(p.layout, "index.json")); err != nil {
		return err
	} else if err := json.Unmarshal(raw, &index); err != nil {
		return err
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%s holds %d images, not one", p.layout, len(index.Manifests))
	}
	manifest, err := os.ReadFile(p.blobPath(index.Manifests[0].Digest))
	if err != nil {
		return err
	}
	var image struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(manifest, &image); err != nil {
		return err
	}
	// five at a time, as our client's default concurrency
	slots := make(chan struct{}, 5)
	errs := make(chan error, len(image.Layers)+1)
	var wg sync.WaitGroup
	for _, d := range append([]descriptor{image.Config}, image.Layers...) {
		wg.Add(1)
		slots <- struct{}{}
		go func(d descriptor) {
			defer wg.Done()
			defer func() { <-slots }()
			if err := p.pushBlob(d); err != nil {
				errs <- fmt.Errorf("blob %s: %w", d.Digest, err)
			}
		}(d)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	header := map[string]string{"Content-Type": index.Manifests[0].MediaType}
	_, err = p.do(http.MethodPut, p.base.JoinPath("manifests", args[3]), strings.NewReader(string(manifest)), int64(len(manifest)), header, http.StatusCreated)
	return err
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chunked-push:", err)
		os.Exit(1)
	}
}
