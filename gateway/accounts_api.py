"""Accounts of the built-in issuer over REST: disable, enable, password
resets and changes, roles, and the TOTP second factor.

No `from __future__ import annotations`: FastAPI reads these signatures at
run time. With an external provider (cluster mode) every route answers
``users_managed_externally``. The logic, and each operation's audit event,
live in the issuer (``services/common/adapters/local_oidc.py``).
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from strongroom.gateway import schemas
from strongroom.gateway.identity import GatewayIdentity
from strongroom.services.common.adapters.local_oidc import User
from strongroom.services.common.auth import ADMIN, Principal, require_role

Username = Annotated[str, Path(min_length=1, max_length=64)]


def user_out(user: User, password: str | None = None) -> schemas.UserOut:
    return schemas.UserOut(
        subject=user.subject,
        username=user.username,
        roles=sorted(user.roles),
        password=password,
        is_disabled=user.is_disabled,
        has_totp=user.has_totp,
    )


def accounts_router(
    issuer: GatewayIdentity,
    authenticate: Callable[[Request], Principal],
    token_lifetime_seconds: int,
) -> APIRouter:
    """Build the /api/v1/users/... account routes around the gateway's issuer."""
    router = APIRouter(prefix="/api/v1/users", tags=["users"])
    Caller = Annotated[Principal, Depends(authenticate)]

    def admin(caller: Principal) -> Principal:
        require_role(caller, ADMIN)
        return caller

    # --- the caller's own account ------------------------------------------

    @router.post("/me/password", response_model=schemas.TokenResponse)
    def change_own_password(
        body: schemas.PasswordChangeIn, request: Request
    ) -> schemas.TokenResponse:
        """Change one's own password; answers with a fresh token, since every
        token issued before stops working. Allowed while a reset password
        must be changed, when every other route is refused."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        address = request.client.host if request.client else ""
        fresh = issuer.change_own_password(
            token, body.current_password, body.new_password, address
        )
        return schemas.TokenResponse(
            access_token=fresh, expires_in=token_lifetime_seconds
        )

    @router.post("/me/totp", status_code=201, response_model=schemas.TotpEnrolment)
    def enrol_totp(caller: Caller) -> schemas.TotpEnrolment:
        enrolment = issuer.enrol_totp(caller)
        return schemas.TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)

    @router.post("/me/totp/confirm", response_model=schemas.UserOut)
    def confirm_totp(body: schemas.TotpCodeIn, caller: Caller) -> schemas.UserOut:
        return user_out(issuer.confirm_totp(caller, body.code))

    @router.post("/me/totp/disable", response_model=schemas.UserOut)
    def disable_totp(body: schemas.TotpCodeIn, caller: Caller) -> schemas.UserOut:
        return user_out(issuer.disable_totp(caller, body.code))

    # --- an admin's help ---------------------------------------------------

    @router.post("/{username}/disable", response_model=schemas.UserOut)
    def disable_user(username: Username, caller: Caller) -> schemas.UserOut:
        return user_out(issuer.disable_user(username, admin(caller)))

    @router.post("/{username}/enable", response_model=schemas.UserOut)
    def enable_user(username: Username, caller: Caller) -> schemas.UserOut:
        return user_out(issuer.enable_user(username, admin(caller)))

    @router.post("/{username}/password-reset", response_model=schemas.PasswordReset)
    def reset_password(username: Username, caller: Caller) -> schemas.PasswordReset:
        password = issuer.reset_password(username, admin(caller))
        return schemas.PasswordReset(username=username, password=password)

    @router.put("/{username}/roles", response_model=schemas.UserOut)
    def set_roles(
        username: Username, body: schemas.RolesIn, caller: Caller
    ) -> schemas.UserOut:
        return user_out(issuer.set_roles(username, set(body.roles), admin(caller)))

    @router.delete("/{username}/totp", response_model=schemas.UserOut)
    def remove_totp(username: Username, caller: Caller) -> schemas.UserOut:
        return user_out(issuer.remove_totp(username, admin(caller)))

    return router
