// Command pulumi-language-nodejs is a minimal Node.js language host for the Pulumi engine, built
// only from github.com/pulumi/pulumi/sdk/v3 (the Go module proxy reachable here does not serve the
// upstream host's module github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3).
//
// It implements what `pulumi preview/up/destroy` of an already-installed TypeScript program needs:
// Handshake, GetPluginInfo, GetRequiredPackages/GetRequiredPlugins (the "pulumi" field of the
// package.json files under node_modules), Run (node_modules/@pulumi/pulumi/cmd/run with the same
// flags and environment variables as upstream), RunPlugin (plugin.go: policy packs, for
// `--policy-pack`, and other plugins written in Node.js) and About. It installs nothing
// (InstallDependencies is a no-op: run `npm ci` yourself), and has no codegen or `pulumi new`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"consulpulumi/engine/internal/serve"
)

// version is set with -ldflags "-X main.version=..." to the Pulumi release this host stands in for.
var version = "3.0.0-dev"

// nodeExitedAfterLoggingUserActionableMessage is the exit code of @pulumi/pulumi/cmd/run when the
// program failed and the error was already reported to the engine (upstream's "bail").
const nodeExitedAfterLoggingUserActionableMessage = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func (h *host) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) About(context.Context, *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node not found on PATH: %w", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("node --version: %w", err)
	}
	return &pulumirpc.AboutResponse{
		Executable: node,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "v"),
		Metadata:   map[string]string{"languageHost": "consul-pulumi minimal nodejs host " + version},
	}, nil
}

func (h *host) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) InstallDependencies(
	*pulumirpc.InstallDependenciesRequest, grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return nil // dependencies are installed by `npm ci` before the engine runs
}

func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func programDir(info *pulumirpc.ProgramInfo) string {
	if info != nil && info.GetProgramDirectory() != "" {
		return info.GetProgramDirectory()
	}
	wd, _ := os.Getwd()
	return wd
}

func (h *host) GetRequiredPackages(
	_ context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	deps, err := requiredPackages(programDir(req.GetInfo()))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: deps}, nil
}

func (h *host) GetRequiredPlugins(
	_ context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	deps, err := requiredPackages(programDir(req.GetInfo()))
	if err != nil {
		return nil, err
	}
	plugins := make([]*pulumirpc.PluginDependency, len(deps))
	for i, d := range deps {
		plugins[i] = &pulumirpc.PluginDependency{Name: d.Name, Kind: d.Kind, Version: d.Version, Server: d.Server}
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func runtimeOption(info *pulumirpc.ProgramInfo, key string) (any, bool) {
	if info == nil || info.GetOptions() == nil {
		return nil, false
	}
	v, ok := info.GetOptions().GetFields()[key]
	if !ok {
		return nil, false
	}
	return v.AsInterface(), true
}

// typescriptEnv is what Pulumi.yaml's runtime.options say about TypeScript, as the environment
// @pulumi/pulumi/cmd/run reads: TypeScript is on unless `typescript: false`, and `tsconfig` names
// the tsconfig file (upstream's option, pulumi/pulumi#8452), which is where `noCheck` comes from.
func typescriptEnv(info *pulumirpc.ProgramInfo) []string {
	typescript := true
	if v, ok := runtimeOption(info, "typescript"); ok {
		if b, ok := v.(bool); ok {
			typescript = b
		}
	}
	env := []string{"PULUMI_NODEJS_TYPESCRIPT=" + strconv.FormatBool(typescript)}
	if v, ok := runtimeOption(info, "tsconfig"); ok {
		if s, ok := v.(string); ok && s != "" {
			env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+s)
		}
	}
	return env
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	pwd := req.GetPwd()
	if pwd == "" {
		pwd = programDir(info)
	}
	runJS, err := findUp(pwd, filepath.Join("node_modules", "@pulumi", "pulumi", "cmd", "run"))
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "node not found on PATH: " + err.Error()}, nil
	}

	args := []string{}
	if nodeargs, ok := runtimeOption(info, "nodeargs"); ok {
		if s, ok := nodeargs.(string); ok {
			args = append(args, strings.Fields(s)...)
		}
	}
	args = append(args, runJS,
		"--monitor="+req.GetMonitorAddress(),
		"--engine="+h.engineAddress,
		"--project="+req.GetProject(),
		"--stack="+req.GetStack(),
		"--pwd="+pwd,
	)
	if req.GetOrganization() != "" {
		args = append(args, "--organization="+req.GetOrganization())
	}
	if info != nil && info.GetRootDirectory() != "" {
		args = append(args, "--root-directory="+info.GetRootDirectory())
	}
	if req.GetParallel() > 0 {
		args = append(args, "--parallel="+strconv.Itoa(int(req.GetParallel())))
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	program := req.GetProgram()
	if info != nil && info.GetEntryPoint() != "" {
		program = info.GetEntryPoint()
	}
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secrets),
	)
	env = append(env, typescriptEnv(info)...)

	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = pwd
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() == nodeExitedAfterLoggingUserActionableMessage {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("program exited with non-zero exit code: %d", exit.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// The engine starts a language plugin as `<plugin> [--logtostderr] [-v=N] [--tracing URL] <engine address>`.
func engineAddressFromArgs(args []string) string {
	for i := len(args) - 1; i >= 0; i-- {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			continue
		}
		if i > 0 && args[i-1] == "--tracing" {
			continue
		}
		return a
	}
	return ""
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println(version)
		return
	}
	h := &host{engineAddress: engineAddressFromArgs(os.Args[1:])}
	serve.Run(func(srv *grpc.Server) { pulumirpc.RegisterLanguageRuntimeServer(srv, h) })
}
