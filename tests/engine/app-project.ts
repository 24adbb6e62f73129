// A second project in the first one's file backend (the same state, PULUMI_HOME and passphrase), so
// that a StackReference from it reads the first project's stacks as `organization/<project>/<stack>`.

import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../mocks";
import { PulumiProject } from "./pulumi-cli";

/**
 * Copies `entries` from the repository into `<first's temporary directory>/<name>`, with the
 * repository's node_modules, and creates stack `stack` of the project in `projectDir` there with
 * `config` (keys without the project prefix, which is read from its Pulumi.yaml).
 */
export async function anotherProject(
    first: PulumiProject,
    name: string,
    entries: readonly string[],
    projectDir: string,
    stack: string,
    config: Record<string, string>,
): Promise<PulumiProject> {
    const tree = path.join(path.dirname(first.dir), name);
    fs.mkdirSync(tree);
    for (const entry of entries) {
        fs.cpSync(path.join(REPO_ROOT, entry), path.join(tree, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(tree, "node_modules"));
    const dir = path.join(tree, projectDir);
    const project = /^name: *(\S+)/m.exec(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"))?.[1];
    if (!project) throw new Error(`${projectDir}/Pulumi.yaml names no project`);
    const other = first.inSameBackend(dir, stack);
    await other.must(["stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"]);
    other.setConfig(config, project);
    return other;
}
