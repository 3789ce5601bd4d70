"""amplify-branch: the commit an Amplify Hosting branch last deployed, and which branch a domain prefix serves.

Rolling back redeploys the recorded job's artifact (StartJob RETRY) and, for a blue/green setup, points the
domain prefix back at the branch it served at the release. Its redeploy action (`redeploy_after`, e.g. after an
amplify-env component) rebuilds the branch's last successful job, so the build reads the restored variables.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State
from lastgood.kinds.redeploy import Redeployable

IN_PROGRESS = {"CREATED", "PENDING", "PROVISIONING", "RUNNING", "CANCELLING"}
_MAX_PAGES = 10
_DOMAIN_SETTINGS = ("enableAutoSubDomain", "autoSubDomainCreationPatterns", "autoSubDomainIAMRole")


class AmplifyBranchSpec(Component):
    kind: Literal["amplify-branch"] = "amplify-branch"
    app_id: str = Field(description="Amplify app id.")
    branch: str = Field(description="Branch whose last successful job is recorded and redeployed.")
    domain: str | None = Field(default=None, description="Custom domain whose prefix -> branch mapping is recorded.")
    prefix: str = Field(default="", description="Subdomain prefix within `domain` ('' is the apex, e.g. 'www').")


class AmplifyBranch(Kind[AmplifyBranchSpec], Redeployable[AmplifyBranchSpec]):
    name = "amplify-branch"
    spec_model = AmplifyBranchSpec
    estimate_seconds = 300.0
    verify_timeout_seconds = 1800.0
    verify_interval_seconds = 15.0
    slow = True
    redeploy_estimate_seconds = 300.0
    redeploy_description = "StartJob RETRY of the branch's last successful job (a build that reads the variables)"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rebuilds: dict[str, str] = {}  # step token -> the job its redeploy started (in this process)

    def redeploy(self, spec: AmplifyBranchSpec, ctx: KindContext) -> ApplyResult:
        jobs = self._jobs(spec, ctx)
        with self._lock:
            started = self._rebuilds.get(ctx.token)
        if started and any(job["jobId"] == started and job["status"] in IN_PROGRESS for job in jobs):
            return ApplyResult(f"job {started} is already rebuilding")
        last = _last_succeeded(jobs)
        if last is None:
            raise StepFailed(f"{spec.app_id}/{spec.branch}: no successful job to rebuild")
        with map_aws_errors(f"amplify:StartJob {spec.app_id}/{spec.branch}"):
            answer = ctx.aws.client("amplify").start_job(
                appId=spec.app_id,
                branchName=spec.branch,
                jobId=last["jobId"],
                jobType="RETRY",
                jobReason=f"lastgood redeploy {ctx.token}",
            )
        job_id = str(answer["jobSummary"]["jobId"])
        with self._lock:
            self._rebuilds[ctx.token] = job_id
        return ApplyResult(f"job {job_id} rebuilds commit {_short(last.get('commitId'))} (job {last['jobId']})")

    def redeploy_pending(self, spec: AmplifyBranchSpec, ctx: KindContext) -> list[str]:
        with self._lock:
            started = self._rebuilds.get(ctx.token)
        if started is None:  # the executor always applies first; a new process applies again
            raise StepFailed(f"{spec.app_id}/{spec.branch}: no rebuild was started by this step")
        job = next((job for job in self._newest_jobs(spec, ctx) if job["jobId"] == started), None)
        if job is None:
            return [f"job {started} is not listed yet"]
        if job["status"] in IN_PROGRESS:
            return [f"job {started} is {job['status']}"]
        if job["status"] != "SUCCEED":
            raise StepFailed(f"{spec.app_id}/{spec.branch}: the rebuild, job {started}, ended {job['status']}")
        return []

    def _newest_jobs(self, spec: AmplifyBranchSpec, ctx: KindContext) -> list[dict[str, Any]]:
        with map_aws_errors(f"amplify:ListJobs {spec.app_id}/{spec.branch}"):
            page = ctx.aws.client("amplify").list_jobs(appId=spec.app_id, branchName=spec.branch, maxResults=50)
        return list(page.get("jobSummaries") or [])

    def read(self, spec: AmplifyBranchSpec, ctx: KindContext) -> State:
        return self._state(spec, ctx, self._jobs(spec, ctx))

    def _state(self, spec: AmplifyBranchSpec, ctx: KindContext, jobs: list[dict[str, Any]]) -> State:
        job = _last_succeeded(jobs)
        state: State = {
            "job_id": job["jobId"] if job else None,
            "commit_id": job.get("commitId") if job else None,
            "source_url": _without_query(job.get("sourceUrl")) if job else None,
        }
        if spec.domain:
            state["domain_branch"] = _prefix_branch(self._domain(spec, ctx), spec.prefix)
        return state

    def differences(self, spec: AmplifyBranchSpec, current: State, target: State) -> list[str]:
        out = []
        if target.get("commit_id") and current.get("commit_id") != target["commit_id"]:
            out.append(f"deployed commit {_short(current.get('commit_id'))} -> {_short(target['commit_id'])}")
        if _domain_differs(spec, current, target):
            out.append(f"{_host(spec)} serves branch {current.get('domain_branch')} -> {target['domain_branch']}")
        return out

    def apply(self, spec: AmplifyBranchSpec, ctx: KindContext, target: State) -> ApplyResult:
        if not target.get("job_id"):
            raise StepFailed(f"{spec.app_id}/{spec.branch}: no successful job was recorded, nothing to redeploy")
        done = []
        jobs = self._jobs(spec, ctx)
        in_flight = [job for job in jobs if job["status"] in IN_PROGRESS and job.get("commitId") == target["commit_id"]]
        if in_flight:  # started by an earlier attempt of this step (or by someone else): not started twice
            done.append(f"job {in_flight[0]['jobId']} is already deploying commit {_short(target['commit_id'])}")
        elif _needs_redeploy(jobs, target["commit_id"]):
            done.append(self._redeploy(spec, ctx, target))
        if spec.domain:
            domain = self._domain(spec, ctx)
            if _domain_differs(spec, {"domain_branch": _prefix_branch(domain, spec.prefix)}, target):
                done.append(self._switch_prefix(spec, ctx, domain, target["domain_branch"]))
        if not done:
            return ApplyResult("already at target", changed=False)
        return ApplyResult("; ".join(done))

    def verify(self, spec: AmplifyBranchSpec, ctx: KindContext, target: State) -> list[str]:
        jobs = self._jobs(spec, ctx)
        running = [job for job in jobs if job["status"] in IN_PROGRESS]
        if running:
            message = ", ".join(f"job {job['jobId']} is {job['status']}" for job in running)
            ctx.progress(message)
            return [message]
        problems = self.differences(spec, self._state(spec, ctx, jobs), target)
        newest = jobs[0] if jobs else None
        if problems and newest and newest["status"] != "SUCCEED" and newest.get("commitId") == target["commit_id"]:
            raise StepFailed(
                f"redeploy of commit {_short(target['commit_id'])}: job {newest['jobId']} {newest['status']}"
            )
        return problems

    def _redeploy(self, spec: AmplifyBranchSpec, ctx: KindContext, target: State) -> str:
        with map_aws_errors(f"amplify:StartJob {spec.app_id}/{spec.branch}"):
            started = ctx.aws.client("amplify").start_job(
                appId=spec.app_id,
                branchName=spec.branch,
                jobId=target["job_id"],
                jobType="RETRY",
                jobReason=f"lastgood rollback {ctx.token}",
            )
        job_id = started["jobSummary"]["jobId"]
        ctx.progress(f"started job {job_id}: redeploy of job {target['job_id']}")
        return f"job {job_id} redeploys commit {_short(target['commit_id'])} (job {target['job_id']})"

    def _switch_prefix(self, spec: AmplifyBranchSpec, ctx: KindContext, domain: dict[str, Any], branch: str) -> str:
        settings = [dict(sub["subDomainSetting"]) for sub in domain.get("subDomains") or []]
        for setting in settings:
            if setting["prefix"] == spec.prefix:
                setting["branchName"] = branch
        # The other domain settings are sent as they are, so the update changes the one prefix only.
        kept = {key: domain[key] for key in _DOMAIN_SETTINGS if domain.get(key) not in (None, [], "")}
        with map_aws_errors(f"amplify:UpdateDomainAssociation {spec.app_id}/{spec.domain}"):
            ctx.aws.client("amplify").update_domain_association(
                appId=spec.app_id, domainName=spec.domain, subDomainSettings=settings, **kept
            )
        return f"{_host(spec)} -> branch {branch}"

    def _jobs(self, spec: AmplifyBranchSpec, ctx: KindContext) -> list[dict[str, Any]]:
        """The branch's jobs, newest first, up to and including the newest successful one."""
        jobs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"appId": spec.app_id, "branchName": spec.branch, "maxResults": 50}
        with map_aws_errors(f"amplify:ListJobs {spec.app_id}/{spec.branch}"):
            for _ in range(_MAX_PAGES):
                page = ctx.aws.client("amplify").list_jobs(**kwargs)
                jobs.extend(page.get("jobSummaries") or [])
                if _last_succeeded(jobs) or not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        return sorted(jobs, key=_job_order, reverse=True)

    def _domain(self, spec: AmplifyBranchSpec, ctx: KindContext) -> dict[str, Any]:
        with map_aws_errors(f"amplify:GetDomainAssociation {spec.app_id}/{spec.domain}"):
            answer = ctx.aws.client("amplify").get_domain_association(appId=spec.app_id, domainName=spec.domain)
        return dict(answer["domainAssociation"])

    def plan(self, spec: AmplifyBranchSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None or not _commit_differs(current, target):
            return change
        note = f"redeploys job {target['job_id']}'s artifact" + (
            f" ({target['source_url']})" if target.get("source_url") else ""
        )
        return replace(change, notes=(note,))

    def action_name(self, current: State, target: State) -> str:
        return "redeploy" if _commit_differs(current, target) else "switch-domain"

    def describe(self, state: State) -> str:
        text = f"commit {_short(state.get('commit_id'))} (job {state.get('job_id') or 'none'})"
        if state.get("domain_branch"):
            text += f", domain -> {state['domain_branch']}"
        return text

    def warnings(self, spec: AmplifyBranchSpec, state: State) -> list[str]:
        out = []
        if not state.get("job_id"):
            out.append(f"{spec.app_id}/{spec.branch} has no successful job: there is nothing to redeploy")
        if spec.domain and not state.get("domain_branch"):
            out.append(f"{_host(spec)} is not mapped to any branch; its mapping will not be restored")
        return out

    def iam_statements(self, spec: AmplifyBranchSpec, scope: IamScope) -> list[IamStatement]:
        app = f"arn:{scope.partition}:amplify:{scope.region}:{scope.account}:apps/{spec.app_id}"
        statements = [
            IamStatement(
                actions=("amplify:ListJobs", "amplify:StartJob"),
                resources=(f"{app}/branches/{spec.branch}", f"{app}/branches/{spec.branch}/jobs/*"),
                purpose=f"find and redeploy branch {spec.branch}'s last successful job",
            )
        ]
        if spec.domain:
            statements.append(
                IamStatement(
                    actions=("amplify:GetDomainAssociation", "amplify:UpdateDomainAssociation"),
                    resources=(f"{app}/domains/{spec.domain}",),
                    purpose=f"read and switch which branch {_host(spec)} serves",
                )
            )
        return statements


def _needs_redeploy(jobs: list[dict[str, Any]], commit: str) -> bool:
    """False when the recorded commit is live and nothing running will replace it."""
    running = [job for job in jobs if job["status"] in IN_PROGRESS]
    last = _last_succeeded(jobs)
    # A running job of another commit would replace the recorded one when it finishes: deploy after it.
    return not (last and last.get("commitId") == commit and not running)


def _last_succeeded(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [job for job in jobs if job["status"] == "SUCCEED"]
    return max(done, key=_job_order) if done else None


def _job_order(job: dict[str, Any]) -> tuple[int, str]:
    job_id = str(job["jobId"])
    return (int(job_id), job_id) if job_id.isdigit() else (-1, job_id)


def _prefix_branch(domain: dict[str, Any], prefix: str) -> str | None:
    for sub in domain.get("subDomains") or []:
        if sub["subDomainSetting"]["prefix"] == prefix:
            return str(sub["subDomainSetting"]["branchName"])
    return None


def _domain_differs(spec: AmplifyBranchSpec, current: State, target: State) -> bool:
    # A prefix that was unmapped at the release is left alone: removing it now would cut its traffic.
    wanted = target.get("domain_branch")
    return bool(spec.domain and wanted and current.get("domain_branch") != wanted)


def _commit_differs(current: State, target: State) -> bool:
    return bool(target.get("commit_id")) and current.get("commit_id") != target.get("commit_id")


def _without_query(url: str | None) -> str | None:
    """A pre-signed artifact URL carries a signature and an access key id: keep only where it points."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _host(spec: AmplifyBranchSpec) -> str:
    return f"{spec.prefix}.{spec.domain}" if spec.prefix else str(spec.domain)


def _short(commit: str | None) -> str:
    return (commit or "none")[:8]
