"""FastAPI app, thin routers, request/response schemas and auth dependencies."""
