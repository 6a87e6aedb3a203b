"""Keystone set-up and Heat readiness for tests/openstack/up.sh.

Runs inside the OpenStack virtualenv (keystoneauth1 and keystoneclient come with
Heat). One process does every Keystone call: each `openstack` CLI invocation
would pay a second of imports.

    bootstrap.py keystone DIR   # after `keystone-manage bootstrap`; writes DIR/state.json
    bootstrap.py wait-heat DIR  # until heat-api answers and an engine reports up
"""

import json
import os
import sys
import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bootstrap.py: environment variable {name} is required")
    return value


def admin_session(auth_url):
    auth = v3.Password(
        auth_url=auth_url,
        username="admin",
        password=env("ADMIN_PASSWORD"),
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth)


def find_or_create(manager, name, **kwargs):
    """Idempotent create: a rerun of up.sh against the same database is harmless."""
    filters = {"name": name}
    if "domain" in kwargs:
        filters["domain"] = kwargs["domain"]
    found = manager.list(**filters)
    if found:
        return found[0]
    return manager.create(name=name, **kwargs)


def keystone(state_dir):
    auth_url = env("KEYSTONE_URL") + "/v3"
    ks = ks_client.Client(session=admin_session(auth_url))
    default = ks.domains.get("default")

    # Heat's service identity: validates user tokens (keystonemiddleware) and holds trusts.
    service = find_or_create(ks.projects, "service", domain=default)
    heat = find_or_create(ks.users, "heat", domain=default, password=env("HEAT_SERVICE_PASSWORD"))
    admin_role = ks.roles.find(name="admin")
    ks.roles.grant(admin_role, user=heat, project=service)

    orchestration = ks.services.list(type="orchestration")
    orchestration = orchestration[0] if orchestration else ks.services.create(name="heat", type="orchestration")
    heat_url = env("HEAT_URL") + "/v1/%(project_id)s"
    existing = {e.interface for e in ks.endpoints.list(service=orchestration)}
    for interface in ("public", "internal", "admin"):
        if interface not in existing:
            ks.endpoints.create(service=orchestration, url=heat_url, interface=interface, region="RegionOne")

    # Roles Heat expects: legacy stack owner, and the role of its stack-domain users.
    owner_role = find_or_create(ks.roles, "heat_stack_owner")
    find_or_create(ks.roles, "heat_stack_user")
    member_role = ks.roles.find(name="member")

    # Heat's stack-user domain: users Heat creates for in-instance signalling
    # (SignalResponder resources such as OS::Heat::ScalingPolicy) live there.
    heat_domain = find_or_create(ks.domains, "heat", description="Heat stack users")
    domain_admin = find_or_create(
        ks.users, "heat_domain_admin", domain=heat_domain, password=env("HEAT_DOMAIN_ADMIN_PASSWORD")
    )
    ks.roles.grant(admin_role, user=domain_admin, domain=heat_domain)

    # The tenant heatscaler works in: a non-admin user, as in production.
    project = find_or_create(ks.projects, env("TENANT_PROJECT"), domain=default)
    user = find_or_create(ks.users, env("TENANT_USER"), domain=default, password=env("TENANT_PASSWORD"),
                          default_project=project)
    ks.roles.grant(member_role, user=user, project=project)
    ks.roles.grant(owner_role, user=user, project=project)
    # A second user with the same rights, for tests that revoke a user's tokens
    # (which would disturb every other test using the first one).
    spare = find_or_create(ks.users, env("TENANT_USER") + "-spare", domain=default,
                           password=env("TENANT_PASSWORD"), default_project=project)
    ks.roles.grant(member_role, user=spare, project=project)
    ks.roles.grant(owner_role, user=spare, project=project)

    # An application credential of that user, created with the user's own token
    # (Keystone only lets users create their own).
    user_auth = v3.Password(
        auth_url=auth_url,
        username=env("TENANT_USER"),
        password=env("TENANT_PASSWORD"),
        project_id=project.id,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    user_ks = ks_client.Client(session=ks_session.Session(auth=user_auth))
    for old in user_ks.application_credentials.list(user=user.id, name="heatscaler"):
        user_ks.application_credentials.delete(old)
    app_cred = user_ks.application_credentials.create(name="heatscaler", user=user.id,
                                                      description="heatscaler tests")

    state = {
        "project_id": project.id,
        "user_id": user.id,
        "spare_user_id": spare.id,
        "app_cred_id": app_cred.id,
        "app_cred_name": "heatscaler",
        "app_cred_secret": app_cred.secret,
    }
    path = os.path.join(state_dir, "state.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(state, f)


def wait_heat(state_dir, timeout=120.0):
    """Heat is ready when its API answers and an engine has registered as up:
    before that, an API call's RPC message would find no engine queue."""
    auth_url = env("KEYSTONE_URL") + "/v3"
    sess = admin_session(auth_url)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            resp = sess.get("/services", endpoint_filter={"service_type": "orchestration", "interface": "public"},
                            raise_exc=False, timeout=5)
            if resp.status_code == 200:
                engines = [s for s in resp.json().get("services", []) if s.get("status") == "up"]
                if engines:
                    return
                last = "heat-api answers, no heat-engine is up yet"
            else:
                last = f"heat-api answered {resp.status_code}"
        except ks_exc.ClientException as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.3)
    sys.exit(f"bootstrap.py: Heat not ready after {timeout:.0f}s ({last}); see {state_dir}/log/")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("keystone", "wait-heat"):
        sys.exit(__doc__)
    {"keystone": keystone, "wait-heat": wait_heat}[sys.argv[1]](sys.argv[2])
