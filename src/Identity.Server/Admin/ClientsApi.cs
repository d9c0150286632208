using Identity.Core.Audit;
using System.Globalization;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Server.Audit;
using Identity.Server.Clients;
using Identity.Server.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Admin;

public sealed record ClientView(string ClientId, string? DisplayName, string Type, string AuthenticationMethod,
    IReadOnlyList<string> GrantTypes, IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
    IReadOnlyList<string> Scopes, bool FirstParty, string? AccessTokenLifetime, string? Region, bool HasJwks,
    string? RefreshTokenReuseLeeway = null, string? TlsClientAuthSubjectDn = null, string? TlsClientAuthSanDns = null,
    string? TlsClientAuthSanUri = null, IReadOnlyList<string>? AllowedIpRanges = null, ClientTokenRateLimit? TokenRateLimit = null);

/// <summary>A client's token-endpoint rate limit: <c>permits</c> token requests per <c>window</c> (hh:mm:ss, 1 s to 1 h).</summary>
public sealed record ClientTokenRateLimit(int? Permits, string? Window);

/// <summary>A client's declaration through the API. The secret is never sent: the server generates it and shows it once.</summary>
public sealed record ClientRequest(string? ClientId, string? DisplayName, string? AuthenticationMethod, List<string>? GrantTypes,
    List<string>? RedirectUris, List<string>? PostLogoutRedirectUris, List<string>? Scopes, bool? FirstParty,
    string? AccessTokenLifetime, string? Region, JsonElement? Jwks, string? RefreshTokenReuseLeeway = null,
    string? TlsClientAuthSubjectDn = null, string? TlsClientAuthSanDns = null, string? TlsClientAuthSanUri = null,
    List<string>? AllowedIpRanges = null, ClientTokenRateLimit? TokenRateLimit = null);

public sealed record ClientCreated(ClientView Client, string? ClientSecret);

public sealed record SecretRotated(string ClientSecret);

/// <summary>
/// OpenID Connect clients, for platform administrators: create (the secret is generated and shown once, stored
/// hashed), replace, delete (its tokens revoked), rotate the secret, register a JWKS for <c>private_key_jwt</c>, or a
/// certificate (<c>tls_client_auth</c> by its subject DN or SAN, <c>self_signed_tls_client_auth</c> by a JWKS with x5c).
/// Every change goes through the caching application manager, so this replica forgets the old client at once and
/// the others within <c>Oidc:ApplicationCacheDuration</c>.
/// </summary>
public static class ClientsApi
{
    public static RouteGroupBuilder MapClientsApi(this RouteGroupBuilder admin)
    {
        var clients = admin.MapGroup("/clients").WithTags("Clients").AddEndpointFilter(async (invocation, next) =>
            invocation.HttpContext.Admin().IsPlatformAdmin ? await next(invocation) : AdminActorExtensions.PlatformOnly());
        clients.MapGet("/", ListAsync);
        clients.MapPost("/", CreateAsync).AcceptsJson<ClientRequest>();
        clients.MapGet("/{clientId}", GetAsync);
        clients.MapPut("/{clientId}", ReplaceAsync).AcceptsJson<ClientRequest>();
        clients.MapDelete("/{clientId}", DeleteAsync);
        clients.MapPost("/{clientId}/rotate-secret", RotateSecretAsync);
        return admin;
    }

    private static async Task<IResult> ListAsync(HttpContext context, AuthorityDbContext db, string? after, int? limit)
    {
        if (!AdminHttp.TryDecodeCursor(after, out var cursor))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        var take = AdminHttp.ClampLimit(limit);
        var query = db.Set<OpenIddictEntityFrameworkCoreApplication>().AsNoTracking();
        if (cursor is not null)
        {
            query = query.Where(a => a.ClientId!.CompareTo(cursor) > 0);
        }

        var page = await query.OrderBy(a => a.ClientId).Take(take + 1).ToListAsync(context.RequestAborted);
        var manager = context.RequestServices.GetRequiredService<IOpenIddictApplicationManager>();
        var items = new List<ClientView>();
        foreach (var application in page.Take(take))
        {
            items.Add(await ViewAsync(manager, application, context.RequestAborted));
        }

        return TypedResults.Ok(new Page<ClientView>(items, page.Count > take ? AdminHttp.EncodeCursor(items[^1].ClientId) : null));
    }

    private static async Task<IResult> GetAsync(string clientId, HttpContext context, IOpenIddictApplicationManager manager)
    {
        var application = await FindAsync(clientId, context);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        context.Response.Headers.ETag = ETag(application);
        return TypedResults.Ok(await ViewAsync(manager, application, context.RequestAborted));
    }

    private static async Task<IResult> CreateAsync(HttpContext context, IOpenIddictApplicationManager manager, AuthorityDbContext db, IAuditTrail audit,
        IOptions<MutualTlsOptions> mtls)
    {
        var (body, problem) = await AdminHttp.ReadAsync<ClientRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var clientId = body!.ClientId ?? "client-" + Guid.NewGuid().ToString("n")[..12];
        var (definition, errors) = await ToDefinitionAsync(body, clientId, db, mtls.Value, context.RequestAborted);
        if (errors.Count == 0 && await manager.FindByClientIdAsync(clientId, context.RequestAborted) is not null)
        {
            errors["clientId"] = ["This client id is already in use."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var secret = UsesSecret(body) ? ClientSecretHasher.GenerateSecret() : null;
        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        var application = (OpenIddictEntityFrameworkCoreApplication)await manager.CreateAsync(ClientSeeder.ToDescriptor(definition!, secret), context.RequestAborted);
        audit.Record(context.Admin().Actor, "client.created", "client", clientId, null,
            new { grantTypes = definition!.GrantTypes, scopes = definition.Scopes, region = definition.Region,
                authenticationMethod = ClientDefinitionRules.AuthenticationMethod(definition, UsesSecret(body)) });
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);

        context.Response.Headers.ETag = ETag(application);
        return TypedResults.Created($"/admin/v1/clients/{clientId}", new ClientCreated(await ViewAsync(manager, application, context.RequestAborted), secret));
    }

    private static async Task<IResult> ReplaceAsync(string clientId, HttpContext context, IOpenIddictApplicationManager manager, AuthorityDbContext db, IAuditTrail audit,
        IOptions<MutualTlsOptions> mtls)
    {
        var application = await FindAsync(clientId, context);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        if (AdminHttp.CheckIfMatch(context.Request, ETag(application)) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<ClientRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        if (body!.ClientId is { } renamed && renamed != clientId)
        {
            return AdminHttp.Invalid("clientId", "A client id cannot change.");
        }

        var (definition, errors) = await ToDefinitionAsync(body, clientId, db, mtls.Value, context.RequestAborted);
        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var before = await ViewAsync(manager, application, context.RequestAborted);
        if (UsesSecret(body) && application.ClientSecret is null)
        {
            return AdminHttp.Invalid("authenticationMethod", "This client has no secret: create a new client or use private_key_jwt.");
        }

        // The stored hash goes in as the "secret": the descriptor comes out confidential, and UpdateAsync(application)
        // below stores it unchanged (only UpdateAsync(application, secret) hashes).
        var desired = ClientSeeder.ToDescriptor(definition!, UsesSecret(body) ? application.ClientSecret : null);
        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        await manager.PopulateAsync(application, desired, context.RequestAborted);
        try
        {
            await manager.UpdateAsync(application, context.RequestAborted);
        }
        catch (OpenIddictExceptions.ConcurrencyException)
        {
            return AdminHttp.Stale();
        }
        catch (OpenIddictExceptions.ValidationException ex)
        {
            return AdminHttp.Invalid("client", string.Join(" ", ex.Results.Select(r => r.ErrorMessage)));
        }

        var after = await ViewAsync(manager, application, context.RequestAborted);
        audit.Record(context.Admin().Actor, "client.updated", "client", clientId, null, new { before, after });
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);
        context.Response.Headers.ETag = ETag(application);
        return TypedResults.Ok(after);
    }

    private static async Task<IResult> DeleteAsync(string clientId, HttpContext context, IOpenIddictApplicationManager manager,
        IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations, AuthorityDbContext db, IAuditTrail audit)
    {
        var application = await FindAsync(clientId, context);
        if (application is null)
        {
            return TypedResults.NoContent(); // idempotent
        }

        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        await tokens.RevokeByApplicationIdAsync(application.Id!, context.RequestAborted);
        await authorizations.RevokeByApplicationIdAsync(application.Id!, context.RequestAborted);
        await manager.DeleteAsync(application, context.RequestAborted);
        audit.Record(context.Admin().Actor, "client.deleted", "client", clientId, null);
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> RotateSecretAsync(string clientId, HttpContext context, IOpenIddictApplicationManager manager, AuthorityDbContext db, IAuditTrail audit)
    {
        var application = await FindAsync(clientId, context);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        if (AdminHttp.CheckIfMatch(context.Request, ETag(application)) is { } precondition)
        {
            return precondition;
        }

        if (application.ClientType != ClientTypes.Confidential || application.ClientSecret is null)
        {
            return AdminHttp.Conflict("This client does not authenticate with a secret.");
        }

        var secret = ClientSecretHasher.GenerateSecret();
        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        try
        {
            await manager.UpdateAsync(application, secret, context.RequestAborted);
        }
        catch (OpenIddictExceptions.ConcurrencyException)
        {
            return AdminHttp.Stale();
        }

        audit.Record(context.Admin().Actor, "client.secret_rotated", "client", clientId, null); // never the secret
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);
        context.Response.Headers.ETag = ETag(application);
        return TypedResults.Ok(new SecretRotated(secret));
    }

    /// <summary>A fresh, untracked read (not the cached copy): admin changes must see the stored row and its concurrency token.</summary>
    private static Task<OpenIddictEntityFrameworkCoreApplication?> FindAsync(string clientId, HttpContext context) =>
        context.RequestServices.GetRequiredService<AuthorityDbContext>().Set<OpenIddictEntityFrameworkCoreApplication>()
            .SingleOrDefaultAsync(a => a.ClientId == clientId, context.RequestAborted);

    private static string ETag(OpenIddictEntityFrameworkCoreApplication application) => $"\"{application.ConcurrencyToken}\"";

    private static bool UsesSecret(ClientRequest body) => body.AuthenticationMethod is null or "client_secret_basic" or "client_secret_post";

    /// <summary>A certificate method this server cannot serve: no mTLS endpoint, or no CA bundle for tls_client_auth.</summary>
    private static string? CertificateMethodUnavailable(string? method, MutualTlsOptions mtls) => method switch
    {
        ClientAuthenticationMethods.TlsClientAuth or ClientAuthenticationMethods.SelfSignedTlsClientAuth when !mtls.Enabled =>
            $"This server has no mutual-TLS endpoint (Mtls:Port, or Mtls:ForwardedCertificateHeader behind a proxy), so no client can authenticate with {method}.",
        ClientAuthenticationMethods.TlsClientAuth when string.IsNullOrWhiteSpace(mtls.TrustedCaFile) =>
            "This server trusts no CA for client certificates (Mtls:TrustedCaFile), so no client can authenticate with tls_client_auth.",
        _ => null,
    };

    private static async Task<(ClientDefinition? Definition, Dictionary<string, string[]> Errors)> ToDefinitionAsync(
        ClientRequest body, string clientId, AuthorityDbContext db, MutualTlsOptions mtls, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (!System.Text.RegularExpressions.Regex.IsMatch(clientId, "^[A-Za-z0-9._:-]{3,100}$"))
        {
            errors["clientId"] = ["3 to 100 letters, digits, '.', '_', ':' or '-'."];
        }

        if (body.DisplayName is { Length: > 200 })
        {
            errors["displayName"] = ["At most 200 characters."];
        }

        if (body.AuthenticationMethod is { } method && !ClientDefinitionRules.Methods.Contains(method))
        {
            errors["authenticationMethod"] = [$"One of {string.Join(", ", ClientDefinitionRules.Methods)}."];
        }
        else if (CertificateMethodUnavailable(body.AuthenticationMethod, mtls) is { } unavailable)
        {
            errors["authenticationMethod"] = [unavailable];
        }

        TimeSpan? lifetime = null;
        if (body.AccessTokenLifetime is { } text)
        {
            if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed) || parsed < TimeSpan.FromSeconds(30) || parsed > TimeSpan.FromDays(1))
            {
                errors["accessTokenLifetime"] = ["A duration (hh:mm:ss) between 00:00:30 and 1.00:00:00."];
            }

            lifetime = parsed;
        }

        TimeSpan? leeway = null;
        if (body.RefreshTokenReuseLeeway is { } leewayText)
        {
            if (!TimeSpan.TryParse(leewayText, CultureInfo.InvariantCulture, out var parsed))
            {
                errors["refreshTokenReuseLeeway"] = ["A duration (hh:mm:ss)."];
            }

            leeway = parsed;
        }

        var rateLimit = ReadTokenRateLimit(body.TokenRateLimit, errors);
        foreach (var problem in ClientAccessPolicy.Problems(body.AllowedIpRanges ?? [], rateLimit, confidential: body.AuthenticationMethod != "none"))
        {
            var field = problem.Field switch
            {
                "AllowedIpRanges" => "allowedIpRanges",
                "TokenRateLimit.Permits" => "tokenRateLimit.permits",
                "TokenRateLimit.Window" => "tokenRateLimit.window",
                _ => "tokenRateLimit",
            };
            errors.TryAdd(problem.Index is { } index ? $"{field}[{index}]" : field, [problem.Message]);
        }

        if (body.Region is { } region && !await db.Regions.AnyAsync(r => r.Code == region, cancellationToken))
        {
            errors["region"] = [$"Unknown region '{region}'."];
        }

        var uris = new List<Uri>();
        foreach (var (field, values) in new[] { ("redirectUris", body.RedirectUris), ("postLogoutRedirectUris", body.PostLogoutRedirectUris) })
        {
            for (var i = 0; i < (values?.Count ?? 0); i++)
            {
                // RFC 6749 §3.1.2: absolute, no fragment; matched exactly.
                if (!Uri.TryCreate(values![i], UriKind.Absolute, out var uri) || !string.IsNullOrEmpty(uri.Fragment) || uri.Scheme is not ("https" or "http"))
                {
                    errors[$"{field}[{i}]"] = ["An absolute http(s) URI without a fragment."];
                }
            }
        }

        var authMethod = body.AuthenticationMethod ?? "client_secret_basic";
        string? jwks = null;
        if (authMethod is ClientAuthenticationMethods.PrivateKeyJwt or ClientAuthenticationMethods.SelfSignedTlsClientAuth)
        {
            if (body.Jwks is not { ValueKind: JsonValueKind.Object } set)
            {
                errors["jwks"] = [$"{authMethod} needs the client's public JSON Web Key Set."];
            }
            else
            {
                try
                {
                    var parsed = JsonWebKeySet.Create(set.GetRawText());
                    if (parsed.Keys.Count == 0 || parsed.Keys.Any(k => k.HasPrivateKey))
                    {
                        errors["jwks"] = ["The key set must hold public keys only, at least one."];
                    }

                    jwks = set.GetRawText();
                }
                catch (ArgumentException)
                {
                    errors["jwks"] = ["Not a JSON Web Key Set."];
                }
            }
        }

        var definition = new ClientDefinition
        {
            ClientId = clientId,
            DisplayName = body.DisplayName,
            GrantTypes = body.GrantTypes ?? [],
            Scopes = body.Scopes ?? [],
            RedirectUris = [.. (body.RedirectUris ?? []).Select(u => Uri.TryCreate(u, UriKind.Absolute, out var v) ? v : null).OfType<Uri>()],
            PostLogoutRedirectUris = [.. (body.PostLogoutRedirectUris ?? []).Select(u => Uri.TryCreate(u, UriKind.Absolute, out var v) ? v : null).OfType<Uri>()],
            FirstParty = body.FirstParty ?? true,
            AccessTokenLifetime = lifetime,
            RefreshTokenReuseLeeway = leeway,
            Region = body.Region,
            Jwks = jwks,
            TokenEndpointAuthMethod = body.AuthenticationMethod,
            TlsClientAuthSubjectDn = body.TlsClientAuthSubjectDn,
            TlsClientAuthSanDns = body.TlsClientAuthSanDns,
            TlsClientAuthSanUri = body.TlsClientAuthSanUri,
            AllowedIpRanges = body.AllowedIpRanges ?? [],
            TokenRateLimit = rateLimit,
        };

        foreach (var rule in ClientDefinitionRules.Validate(definition, "client", secretGenerated: authMethod is "client_secret_basic" or "client_secret_post"))
        {
            var field = rule.Contains("TlsClientAuthSubjectDn '", StringComparison.Ordinal) ? "tlsClientAuthSubjectDn"
                : rule.Contains("TlsClientAuthSanDns '", StringComparison.Ordinal) ? "tlsClientAuthSanDns"
                : rule.Contains("TlsClientAuthSanUri '", StringComparison.Ordinal) ? "tlsClientAuthSanUri"
                : rule.Contains(":Jwks", StringComparison.Ordinal) || rule.Contains(": the JWKS", StringComparison.Ordinal) ? "jwks"
                : rule.Contains("TlsClientAuth", StringComparison.Ordinal) || rule.Contains("TokenEndpointAuthMethod", StringComparison.Ordinal) ? "authenticationMethod"
                : rule.Contains("RefreshTokenReuseLeeway", StringComparison.Ordinal) ? "refreshTokenReuseLeeway"
                : rule.Contains("GrantTypes", StringComparison.Ordinal) ? "grantTypes"
                : rule.Contains("RedirectUris", StringComparison.Ordinal) || rule.Contains("redirect URI", StringComparison.Ordinal) ? "redirectUris"
                : rule.Contains("client_credentials", StringComparison.Ordinal) ? "authenticationMethod"
                : "client";
            errors.TryAdd(field, [rule.Replace("client:", "", StringComparison.Ordinal).Trim()]);
        }

        return (errors.Count == 0 ? definition : null, errors);
    }

    private static async Task<ClientView> ViewAsync(IOpenIddictApplicationManager manager, object application, CancellationToken cancellationToken)
    {
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, cancellationToken);
        var permissions = descriptor.Permissions;
        var access = ClientAccessPolicy.Of(descriptor.Properties);
        var certificate = ClientCertificateIdentity.From(descriptor.Properties);
        var method = descriptor.Properties.TryGetValue(ClientSeeder.AuthenticationMethodProperty, out var registered) ? registered.GetString()!
            : certificate is not null ? ClientAuthenticationMethods.TlsClientAuth
            : descriptor.ClientType == ClientTypes.Public ? ClientAuthenticationMethods.None
            : descriptor.JsonWebKeySet is not null && descriptor.ClientSecret is null ? ClientAuthenticationMethods.PrivateKeyJwt
            : ClientAuthenticationMethods.ClientSecretBasic;
        return new ClientView(
            descriptor.ClientId!,
            descriptor.DisplayName,
            descriptor.ClientType ?? ClientTypes.Public,
            method,
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..]).Order(StringComparer.Ordinal)],
            [.. descriptor.RedirectUris.Select(u => u.AbsoluteUri)],
            [.. descriptor.PostLogoutRedirectUris.Select(u => u.AbsoluteUri)],
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.Scope.Length..]).Order(StringComparer.Ordinal)],
            descriptor.ConsentType != ConsentTypes.Explicit,
            descriptor.Settings.TryGetValue(Settings.TokenLifetimes.AccessToken, out var lifetime) ? lifetime : null,
            descriptor.Properties.TryGetValue(ClientSeeder.RegionProperty, out var region) ? region.GetString() : null,
            descriptor.JsonWebKeySet is not null,
            descriptor.Properties.TryGetValue(ClientSeeder.RefreshTokenReuseLeewayProperty, out var leeway) ? leeway.GetString() : null,
            certificate?.SubjectDn, certificate?.SanDns, certificate?.SanUri,
            access.AllowedIpRanges,
            access.TokenRateLimit is { } limit
                ? new ClientTokenRateLimit(limit.Permits, limit.Window.ToString("c", CultureInfo.InvariantCulture))
                : null);
    }

    /// <summary>The requested rate limit, or <c>null</c>; a missing or unreadable part is an error naming it.</summary>
    private static TokenRateLimitDefinition? ReadTokenRateLimit(ClientTokenRateLimit? requested, Dictionary<string, string[]> errors)
    {
        if (requested is null)
        {
            return null;
        }

        if (requested.Permits is null)
        {
            errors["tokenRateLimit.permits"] = ["Required: how many token requests per window."];
        }

        if (requested.Window is null)
        {
            errors["tokenRateLimit.window"] = ["Required: a duration (hh:mm:ss)."];
        }
        else if (!TimeSpan.TryParse(requested.Window, CultureInfo.InvariantCulture, out var parsed))
        {
            errors["tokenRateLimit.window"] = [$"A duration (hh:mm:ss) from {ClientAccessPolicy.MinWindow:c} to {ClientAccessPolicy.MaxWindow:c}."];
        }
        else if (requested.Permits is { } permits)
        {
            return new TokenRateLimitDefinition { Permits = permits, Window = parsed };
        }

        return null;
    }
}
