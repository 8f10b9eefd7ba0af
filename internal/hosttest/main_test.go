package hosttest_test

import (
	"testing"

	"github.com/site-controller/site-controller/internal/hosttest"
)

func TestMain(m *testing.M) { hosttest.Main(m) }
