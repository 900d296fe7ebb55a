package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// State records replay progress so an interrupted replay can resume: per
// file, how many data rows were read up to the last acknowledged request,
// and whether the file is finished.
type State struct {
	Dir     string               `json:"dir"`
	Options string               `json:"options"` // the settings that decide what is sent; resume refuses others
	Files   map[string]FileState `json:"files"`
	path    string
}

// FileState is the progress of one file.
type FileState struct {
	Rows int64 `json:"rows"`
	Done bool  `json:"done"`
}

// LoadState reads path; a missing file gives an empty state.
func LoadState(path string) (*State, error) {
	st := &State{Files: map[string]FileState{}, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Files == nil {
		st.Files = map[string]FileState{}
	}
	st.path = path
	return st, nil
}

// Save writes the state atomically (temp file + rename).
func (st *State) Save() error {
	if st.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(st.path), ".replay-state-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), st.path)
}
