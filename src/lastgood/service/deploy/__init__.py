"""Deployments as use cases: the engine's deployment (row, shift, finish) judged by the guard at each step.

`run` (start, run, resume a deployment, holding the environment throughout), `watch` (one step judged: the
file's triggers and the canary judge every period, a person's request within a poll slice), `act` (a person's
promote or abort, asked of the running process or done here under the hold). Callers get the engine's
Pydantic models (`Deployment`, `DeployResult`), re-exported here.
"""

from lastgood.engine.deploy.listener import DeployListener, QuietDeployListener
from lastgood.engine.deploy.models import Deployment, DeployResult, parse_steps
from lastgood.engine.deploy.shift import DEPLOYABLE_KINDS
from lastgood.engine.deploy.start import DeployRequest
from lastgood.service.deploy.act import act, act_on
from lastgood.service.deploy.run import Deployer
from lastgood.service.deploy.views import deployment, deployment_where, deployments, new_deployment_id

__all__ = [
    "DEPLOYABLE_KINDS",
    "DeployListener",
    "DeployRequest",
    "DeployResult",
    "Deployer",
    "Deployment",
    "QuietDeployListener",
    "act",
    "act_on",
    "deployment",
    "deployment_where",
    "deployments",
    "new_deployment_id",
    "parse_steps",
]
