"""Where agents live: the critic and the loop as tools for agent frameworks (LangChain, the OpenAI Agents SDK,
pydantic-ai), as an MCP server, and for LangGraph Studio. Each adapter is small; they share `integrations/tools.py`
(one set of tool functions, one image-argument reader, one error rule)."""
