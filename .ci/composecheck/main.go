// Command composecheck loads a Compose file as `docker compose config` does and prints
// the resolved project as JSON, or the loader's error and exit status 1.
//
// It is compose-go, the loader Docker Compose itself uses: variable interpolation
// (${VAR:?} fails when VAR is unset), validation against the Compose specification's
// JSON schema, and the consistency checks (depends_on targets, networks, volumes).
// Built by .ci/deploy-tools for tests/unit/deploy/test_compose.py, where no Docker
// engine (or `docker compose`) is needed.
//
//	composecheck docker-compose.yml
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE")
		os.Exit(2)
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		// The caller's environment only: no .env file, so the test sees exactly what it set.
		cli.WithOsEnv,
		cli.WithDiscardEnvFile,
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(1)
}
