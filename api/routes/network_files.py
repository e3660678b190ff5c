"""(filled in by its issue-11 work package)"""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
