package main

// RunPlugin starts a plugin written in Node.js the way upstream's host does (sdk/nodejs/cmd/
// pulumi-language-nodejs at v3.248.0, RunPlugin): a policy pack (kind "analyzer", what
// `pulumi preview --policy-pack DIR` starts) with @pulumi/pulumi/cmd/run-policy-pack behind the
// SDK's PolicyProxy, which hands the pack the stack's configuration in the environment; any other
// plugin with @pulumi/pulumi/cmd/run-plugin (or PULUMI_LANGUAGE_NODEJS_RUN_PATH). The module is
// resolved by node from the plugin's directory, so a pack without its own node_modules uses the
// nearest one above it (this repository's root for policy/). The plugin's stdout and stderr go back
// to the engine on the RunPlugin stream. No debugger attach and no bun runtime.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/shlex"
	"github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	policyPackRunner = "@pulumi/pulumi/cmd/run-policy-pack"
	pluginRunner     = "@pulumi/pulumi/cmd/run-plugin"
)

// pluginOptions are Pulumi.yaml's / PulumiPolicy.yaml's runtime options, checked as upstream's
// parseOptions checks them (a wrong type is an error, not ignored).
type pluginOptions struct {
	typescript bool
	tsconfig   string
	nodeargs   string
}

func parsePluginOptions(info *pulumirpc.ProgramInfo) (pluginOptions, error) {
	opts := pluginOptions{typescript: true}
	if v, ok := runtimeOption(info, "typescript"); ok {
		b, isBool := v.(bool)
		if !isBool {
			return opts, errors.New("typescript option must be a boolean")
		}
		opts.typescript = b
	}
	if v, ok := runtimeOption(info, "tsconfig"); ok {
		s, isString := v.(string)
		if !isString {
			return opts, errors.New("tsconfigpath option must be a string")
		}
		opts.tsconfig = s
	}
	if v, ok := runtimeOption(info, "nodeargs"); ok {
		s, isString := v.(string)
		if !isString {
			return opts, errors.New("nodeargs option must be a string")
		}
		opts.nodeargs = s
	}
	return opts, nil
}

// pluginLaunch is how node is started for a plugin, before the module is resolved to a file.
type pluginLaunch struct {
	module string   // the runner module, resolved by node from dir
	args   []string // the arguments after the runner's file
	dir    string
	env    []string
}

// planPlugin mirrors upstream's argument and environment handling: the engine's environment
// (req.Env) plus the TypeScript options; for a policy pack the engine's arguments (its address)
// come before the pack's directory and node runs in that directory, for other plugins the directory
// comes first and node runs in the engine's working directory. Upstream passes nodeargs after the
// runner's file (so the runner sees them, not node); kept as upstream has it.
func planPlugin(req *pulumirpc.RunPluginRequest, runPathOverride string) (pluginLaunch, error) {
	info := req.GetInfo()
	dir := info.GetProgramDirectory()
	opts, err := parsePluginOptions(info)
	if err != nil {
		return pluginLaunch{}, err
	}
	env := slices.Clone(req.GetEnv()) // nil stays nil: node then inherits this environment, as upstream
	if opts.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if opts.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+opts.tsconfig)
	}
	nodeargs, err := shlex.Split(opts.nodeargs)
	if err != nil {
		return pluginLaunch{}, fmt.Errorf("nodeargs %q: %w", opts.nodeargs, err)
	}
	launch := pluginLaunch{args: nodeargs, env: env}
	if req.GetKind() == string(apitype.AnalyzerPlugin) {
		launch.module = policyPackRunner
		launch.args = append(append(launch.args, req.GetArgs()...), dir)
		launch.dir = dir
	} else {
		launch.module = runPathOverride
		if launch.module == "" {
			launch.module = pluginRunner
		}
		launch.args = append(append(launch.args, dir), req.GetArgs()...)
		launch.dir = req.GetPwd()
	}
	return launch, nil
}

// stackEnv is what the policy proxy learns from the engine's ConfigureStack call, as the environment
// @pulumi/pulumi's runtime reads (getProject(), getStack(), new Config()).
func stackEnv(config *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	if config == nil {
		return nil, nil
	}
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	add("PULUMI_NODEJS_ORGANIZATION", config.GetOrganization())
	add("PULUMI_NODEJS_PROJECT", config.GetProject())
	add("PULUMI_NODEJS_STACK", config.GetStack())
	add("PULUMI_NODEJS_DRY_RUN", strconv.FormatBool(config.GetDryRun()))
	if config.GetConfig() != nil {
		data, err := json.Marshal(config.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("could not marshal stack configuration: %w", err)
		}
		add("PULUMI_CONFIG", string(data))
	}
	return env, nil
}

// locateModule asks node where a module is, from dir (node's own resolution: node_modules here or
// above, hoisted or not), with upstream's message when it is not installed.
func locateModule(node, module, dir string) (string, error) {
	script := fmt.Sprintf(`try { console.log(require.resolve(%q)); } catch (error) {`+
		` if (error.code === "MODULE_NOT_FOUND") {`+
		` console.error("It looks like the Pulumi SDK has not been installed. Have you run npm install in " + %q + "?");`+
		` } else { console.error(error.message); } process.exit(1); }`, module, dir)
	cmd := exec.Command(node, "-e", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", errors.New(strings.TrimSpace(string(exit.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// lockedSender serialises Send: the plugin's stdout and stderr are copied by two goroutines, and a
// gRPC stream must not be sent on from two goroutines at once.
type lockedSender struct {
	pulumirpc.LanguageRuntime_RunPluginServer
	mu sync.Mutex
}

func (s *lockedSender) Send(r *pulumirpc.RunPluginResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.LanguageRuntime_RunPluginServer.Send(r)
}

func (h *host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	ctx := server.Context()
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(&lockedSender{LanguageRuntime_RunPluginServer: server}, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("node not found on PATH: %w", err)
	}
	launch, err := planPlugin(req, os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH"))
	if err != nil {
		return err
	}
	file, err := locateModule(node, launch.module, req.GetInfo().GetProgramDirectory())
	if err != nil {
		return err
	}

	// A policy pack: the engine talks to the proxy (its port goes out on stdout first), which waits
	// for ConfigureStack, starts the pack with the stack's configuration and forwards every call.
	var proxy *sdk.PolicyProxy
	if req.GetKind() == string(apitype.AnalyzerPlugin) {
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return fmt.Errorf("could not start policy pack proxy: %w", err)
		}
		config, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("could not get stack configuration: %w", err)
		}
		env, err := stackEnv(config)
		if err != nil {
			return err
		}
		launch.env = append(launch.env, env...)
	}

	cmd := exec.CommandContext(ctx, node, append([]string{file}, launch.args...)...)
	cmd.Dir = launch.dir
	cmd.Env = launch.env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := runPluginCommand(ctx, cmd, proxy); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("Program exited with non-zero exit code: %d", exit.ExitCode()) //nolint:staticcheck // upstream's text
		}
		return fmt.Errorf("Problem executing plugin program (could not run language executor): %w", err) //nolint:staticcheck // upstream's text
	}
	return closer.Close()
}

func runPluginCommand(ctx context.Context, cmd *exec.Cmd, proxy *sdk.PolicyProxy) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if proxy != nil {
		if err := proxy.Attach(ctx, cmd); err != nil {
			return fmt.Errorf("could not attach policy pack proxy: %w", err)
		}
		return nil
	}
	return cmd.Wait()
}
