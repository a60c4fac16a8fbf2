"""Bearer-token guard for the /v1 routes (open when settings.serve_token is unset)."""

from __future__ import annotations

import secrets
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer_scheme = HTTPBearer(auto_error=False, description="settings.serve_token")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """401 unless the request carries `Authorization: Bearer <serve_token>` (when one is set)."""
    expected: str | None = request.app.state.serving.settings.serve_token
    if not expected:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        _reject(request, "missing bearer token: send `Authorization: Bearer <token>`")
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        _reject(request, "invalid bearer token")


def _reject(request: Request, message: str) -> NoReturn:
    request.app.state.serving.metrics.error("unauthorized")
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=message,
        headers={"WWW-Authenticate": "Bearer"},
    )
