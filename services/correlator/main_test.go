package correlator

import (
	"os"
	"testing"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
