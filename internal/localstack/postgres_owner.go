package localstack

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// postgresOSUser is who runs Postgres when we are root: Postgres refuses to
// run as root, and Debian's package creates this user.
const postgresOSUser = "postgres"

// postgresCredential returns nil when we are not root (Postgres runs as us),
// else the credential of the postgres OS user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(postgresOSUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, postgres must run as OS user %q: %w (apt-get install postgresql creates it)", postgresOSUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of %s: %w", postgresOSUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of %s: %w", postgresOSUser, err)
	}
	// Set the user's own groups, or the child would keep root's.
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				groups = append(groups, uint32(g))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

// ensureOwnedDir creates dir with mode 0700 (Postgres insists) and, when we
// run Postgres as another user, hands the whole tree to that user.
func ensureOwnedDir(dir string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if cred == nil {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == cred.Uid && sys.Gid == cred.Gid {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
}

// ensureTraversable lets the postgres user reach dir: dir and each ancestor
// that user cannot search get o+x (search only, no listing). Temp dirs are
// 0700, so tests always need this.
func ensureTraversable(log *slog.Logger, dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !searchable(st, cred) {
			mode := st.Mode().Perm() | 0o001
			log.Warn("making dir searchable for the postgres user", "dir", d, "mode", mode)
			if err := os.Chmod(d, mode); err != nil {
				return fmt.Errorf("make %s searchable for %s: %w", d, postgresOSUser, err)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func searchable(st os.FileInfo, cred *syscall.Credential) bool {
	perm := st.Mode().Perm()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	switch {
	case sys.Uid == cred.Uid:
		return perm&0o100 != 0
	case sys.Gid == cred.Gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
