#!/usr/bin/env bash
# Runs a one-off conch command on the Terraform (ECS Fargate) setup and
# waits for it:
#
#   deploy/ecs-run.sh migrate        # before rolling out a release
#   deploy/ecs-run.sh rotate-keys    # after every task has the new key
#
# Reads cluster, task definition and network from `terraform output` in
# deploy/terraform (or TF_DIR). Exits with the command's exit status.
set -euo pipefail

cmd=${1:-}
case $cmd in
migrate | rotate-keys) ;;
*)
	echo "usage: $0 migrate|rotate-keys" >&2
	exit 2
	;;
esac

tf_dir=${TF_DIR:-$(dirname "$0")/terraform}
out() { terraform -chdir="$tf_dir" output -raw "$1"; }

cluster=$(out cluster_name)
family=$(out migrate_task_definition)
network=$(out run_task_network)
overrides=$(printf '{"containerOverrides":[{"name":"conch","command":["conch","%s"]}]}' "$cmd")

task=$(aws ecs run-task --cluster "$cluster" --launch-type FARGATE \
	--task-definition "$family" --network-configuration "$network" \
	--overrides "$overrides" --started-by "ecs-run-$cmd" \
	--query 'tasks[0].taskArn' --output text)
if [[ -z $task || $task == None ]]; then
	echo "ecs-run: the task did not start" >&2
	exit 1
fi
echo "ecs-run: $cmd running as $task" >&2

aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task"
code=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" \
	--query "tasks[0].containers[?name=='conch'].exitCode | [0]" --output text)
reason=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" \
	--query 'tasks[0].stoppedReason' --output text)
echo "ecs-run: $cmd exited with ${code} (${reason}); logs: $(out log_group), stream prefix oneoff" >&2
[[ $code == 0 ]]
