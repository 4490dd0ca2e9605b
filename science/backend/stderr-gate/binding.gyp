# Built by `npx pipeline setup-backend` (science/backend/setup.ts) into build/Release/stderr_gate.node.
{
  "targets": [
    {
      "target_name": "stderr_gate",
      "sources": ["stderr_gate.c"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
