# syntax=docker/dockerfile:1
#
# Image of the regional sample service (src/Identity.RegionSample). Build from the repository root:
#   docker build -f deploy/RegionSample.Dockerfile -t identity-region-sample .
# Configured entirely through the environment (see docker-compose.yml): Identity__*, IdentityRegion__*,
# Kestrel__Endpoints__*, IdentityTokenValidation__*, IdentityTokenClient__*, RegionCalls__*.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src

# Project files first: the restore layer is reused until one of them changes.
COPY global.json Directory.Build.props Directory.Packages.props dotnet-tools.json ./
COPY src/Identity.Contracts/Identity.Contracts.csproj src/Identity.Contracts/
COPY src/Identity.Messaging/Identity.Messaging.csproj src/Identity.Messaging/
COPY src/Identity.Region/Identity.Region.csproj src/Identity.Region/
COPY src/Identity.RegionSample/Identity.RegionSample.csproj src/Identity.RegionSample/
RUN dotnet restore src/Identity.RegionSample/Identity.RegionSample.csproj

COPY src/ src/
RUN dotnet publish src/Identity.RegionSample/Identity.RegionSample.csproj -c Release -o /app --no-restore -p:UseAppHost=false
RUN mkdir -p /writable/data

# Ubuntu chiseled: no shell, non-root `app` user (UID 1654); "extra" for ICU and time zones.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled-extra AS runtime
WORKDIR /app
# The endpoints come from Kestrel__Endpoints__* (a plain one for the pages, a TLS one for the API).
ENV ASPNETCORE_URLS="" \
    ASPNETCORE_HTTP_PORTS=""
COPY --from=build /app ./
# Writable only: the replica's SQLite file and the cached signing keys (data/, relative to /app).
COPY --from=build --chown=1654:1654 /writable/ ./
USER 1654
ENTRYPOINT ["dotnet", "Identity.RegionSample.dll"]
