package maasserver

import "sort"

// Resource is a snapshot of one boot resource.
type Resource struct {
	ID                int
	Name, Arch, Title string
	Sets              []Set
}

// Set is a snapshot of one resource set.
type Set struct {
	Version string
	Files   []File
}

// File is a snapshot of one resource file.
type File struct {
	ID                 int
	Filetype, Filename string
	SHA256             string
	Size, Received     int64
	Complete           bool
}

// Resources returns all boot resources, ordered by id.
func (s *Server) Resources() []Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Resource
	for _, id := range s.sortedIDs() {
		r := s.resources[id]
		snap := Resource{ID: r.id, Name: r.name, Arch: r.arch, Title: r.title}
		for _, set := range r.sets {
			ss := Set{Version: set.version}
			for _, f := range set.files {
				ss.Files = append(ss.Files, File{ID: f.id, Filetype: f.filetype, Filename: f.filename,
					SHA256: f.sha256, Size: f.size, Received: f.received, Complete: f.complete})
			}
			snap.Sets = append(snap.Sets, ss)
		}
		out = append(out, snap)
	}
	return out
}

// Content returns the uploaded bytes of a file.
func (s *Server) Content(fileID int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.resources {
		for _, set := range r.sets {
			for _, f := range set.files {
				if f.id == fileID {
					return append([]byte(nil), f.content...)
				}
			}
		}
	}
	return nil
}

// Chunks returns the body sizes of the PUTs to a file that reached the
// handler, in arrival order.
func (s *Server) Chunks(fileID int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.chunks[fileID]...)
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Nonces returns the distinct OAuth nonces received, sorted.
func (s *Server) Nonces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range s.requests {
		if r.Nonce != "" {
			seen[r.Nonce] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
