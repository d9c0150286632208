using System.Globalization;
using System.Text.Json;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Identity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

/// <summary>
/// The outcome of a change to a client: the client as it now stands, its version (an ETag) and, after creation or
/// rotation, the generated secret, which exists nowhere else in clear and must be shown once.
/// </summary>
public sealed record ClientChange(OperationResult Result, ClientView? Client = null, string? ETag = null, string? Secret = null);

/// <summary>
/// The one home of the rules for OpenID Connect clients, for the admin API and the console alike: a declaration is
/// validated (URIs, methods, certificate identity, JWKS, access policy, region), written through OpenIddict's
/// application manager with its concurrency token, and audited with the admin as actor in the same transaction. A
/// generated secret is stored hashed and returned once. Every change goes through the caching application manager, so
/// this replica forgets the old client at once and the others within <c>Oidc:ApplicationCacheDuration</c>.
/// </summary>
public sealed class ClientOperations(
    AuthorityDbContext db,
    IOpenIddictApplicationManager manager,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
    IAuditTrail audit,
    IOptions<MutualTlsOptions> mtls,
    IOptions<ClientCatalogueOptions> declared)
{
    /// <summary>A fresh, tracked read (not the cached copy): admin changes must see the stored row and its concurrency token.</summary>
    public Task<OpenIddictEntityFrameworkCoreApplication?> FindAsync(string clientId, CancellationToken cancellationToken) =>
        db.Set<OpenIddictEntityFrameworkCoreApplication>().SingleOrDefaultAsync(a => a.ClientId == clientId, cancellationToken);

    /// <summary>The client's version as an entity tag: its concurrency token, which every update replaces.</summary>
    public static string ETag(OpenIddictEntityFrameworkCoreApplication application) => $"\"{application.ConcurrencyToken}\"";

    /// <summary>One page of clients in client-id order, after <paramref name="afterClientId"/>; <c>More</c> when another page follows.</summary>
    public async Task<(IReadOnlyList<ClientView> Items, bool More)> ListAsync(string? afterClientId, int take, CancellationToken cancellationToken)
    {
        var query = db.Set<OpenIddictEntityFrameworkCoreApplication>().AsNoTracking();
        if (afterClientId is not null)
        {
            query = query.Where(a => a.ClientId!.CompareTo(afterClientId) > 0);
        }

        var page = await query.OrderBy(a => a.ClientId).Take(take + 1).ToListAsync(cancellationToken);
        var items = new List<ClientView>();
        foreach (var application in page.Take(take))
        {
            items.Add(await ViewAsync(application, cancellationToken));
        }

        return (items, page.Count > take);
    }

    /// <summary>A new client; its id generated when none is asked for, its secret generated when it authenticates with one.</summary>
    public async Task<ClientChange> CreateAsync(ClientRequest body, Actor actor, CancellationToken cancellationToken)
    {
        var clientId = body.ClientId ?? "client-" + Guid.NewGuid().ToString("n")[..12];
        var (definition, errors) = await ToDefinitionAsync(body, clientId, cancellationToken);
        if (errors.Count == 0 && await manager.FindByClientIdAsync(clientId, cancellationToken) is not null)
        {
            errors["clientId"] = ["This client id is already in use."];
        }

        if (errors.Count > 0)
        {
            return new ClientChange(OperationResult.Invalid(errors));
        }

        var secret = UsesSecret(body) ? ClientSecretHasher.GenerateSecret() : null;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var application = (OpenIddictEntityFrameworkCoreApplication)await manager.CreateAsync(ClientSeeder.ToDescriptor(definition!, secret), cancellationToken);
        audit.Record(actor, "client.created", "client", clientId, null,
            new { grantTypes = definition!.GrantTypes, scopes = definition.Scopes, region = definition.Region,
                authenticationMethod = ClientDefinitionRules.AuthenticationMethod(definition, UsesSecret(body)) });
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new ClientChange(OperationResult.Done, await ViewAsync(application, cancellationToken), ETag(application), secret);
    }

    /// <summary>
    /// Replaces the client's declaration (its id and secret stay); refused as stale when <paramref name="expectedETag"/>
    /// is given and no longer the client's, or when another change lands first.
    /// </summary>
    public async Task<ClientChange> ReplaceAsync(OpenIddictEntityFrameworkCoreApplication application, ClientRequest body, Actor actor,
        CancellationToken cancellationToken, string? expectedETag = null)
    {
        var clientId = application.ClientId!;
        if (expectedETag is not null && expectedETag != ETag(application))
        {
            return new ClientChange(OperationResult.Stale);
        }

        if (body.ClientId is { } renamed && renamed != clientId)
        {
            return new ClientChange(OperationResult.Invalid("clientId", "A client id cannot change."));
        }

        var (definition, errors) = await ToDefinitionAsync(body, clientId, cancellationToken);
        if (errors.Count > 0)
        {
            return new ClientChange(OperationResult.Invalid(errors));
        }

        var before = await ViewAsync(application, cancellationToken);
        if (UsesSecret(body) && application.ClientSecret is null)
        {
            return new ClientChange(OperationResult.Invalid("authenticationMethod",
                "This client has no secret: create a new client or use private_key_jwt."));
        }

        // The stored hash goes in as the "secret": the descriptor comes out confidential, and UpdateAsync(application)
        // below stores it unchanged (only UpdateAsync(application, secret) hashes).
        var desired = ClientSeeder.ToDescriptor(definition!, UsesSecret(body) ? application.ClientSecret : null);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        await manager.PopulateAsync(application, desired, cancellationToken);
        try
        {
            await manager.UpdateAsync(application, cancellationToken);
        }
        catch (OpenIddictExceptions.ConcurrencyException)
        {
            return new ClientChange(OperationResult.Stale);
        }
        catch (OpenIddictExceptions.ValidationException ex)
        {
            return new ClientChange(OperationResult.Invalid("client", string.Join(" ", ex.Results.Select(r => r.ErrorMessage))));
        }

        var after = await ViewAsync(application, cancellationToken);
        audit.Record(actor, "client.updated", "client", clientId, null, new { before, after });
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new ClientChange(OperationResult.Done, after, ETag(application));
    }

    /// <summary>
    /// Why the client cannot be deleted through the API or the console, or null. The console's own client and the clients
    /// declared in configuration (<c>Oidc:Clients</c>) are registered again at every start: deleting one would only cut
    /// its users off until then (the console locking every administrator out), so they are removed from configuration.
    /// </summary>
    public string? WhyUndeletable(string clientId) =>
        clientId == AdminConsole.ConsoleClient.ClientId
            ? $"{clientId} is the admin console's own client: it is registered at every start and cannot be deleted."
            : declared.Value.Clients.Any(c => string.Equals(c.ClientId, clientId, StringComparison.Ordinal))
                ? $"{clientId} is declared in configuration (Oidc:Clients) and registered again at every start: remove it there."
                : null;

    /// <summary>
    /// Deletes the client and revokes its tokens and authorizations, in one transaction; refused (conflict) for the
    /// console's client and declared ones (<see cref="WhyUndeletable"/>).
    /// </summary>
    public async Task<OperationResult> DeleteAsync(OpenIddictEntityFrameworkCoreApplication application, Actor actor, CancellationToken cancellationToken)
    {
        if (WhyUndeletable(application.ClientId!) is { } reason)
        {
            return OperationResult.Conflict(reason);
        }

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        await tokens.RevokeByApplicationIdAsync(application.Id!, cancellationToken);
        await authorizations.RevokeByApplicationIdAsync(application.Id!, cancellationToken);
        await manager.DeleteAsync(application, cancellationToken);
        audit.Record(actor, "client.deleted", "client", application.ClientId, null);
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return OperationResult.Done;
    }

    /// <summary>A new generated secret (the old one stops working at once), returned once; audited without it.</summary>
    public async Task<ClientChange> RotateSecretAsync(OpenIddictEntityFrameworkCoreApplication application, Actor actor,
        CancellationToken cancellationToken, string? expectedETag = null)
    {
        if (expectedETag is not null && expectedETag != ETag(application))
        {
            return new ClientChange(OperationResult.Stale);
        }

        if (application.ClientType != ClientTypes.Confidential || application.ClientSecret is null)
        {
            return new ClientChange(OperationResult.Conflict("This client does not authenticate with a secret."));
        }

        var secret = ClientSecretHasher.GenerateSecret();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        try
        {
            await manager.UpdateAsync(application, secret, cancellationToken);
        }
        catch (OpenIddictExceptions.ConcurrencyException)
        {
            return new ClientChange(OperationResult.Stale);
        }

        audit.Record(actor, "client.secret_rotated", "client", application.ClientId, null); // never the secret
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new ClientChange(OperationResult.Done, ETag: ETag(application), Secret: secret);
    }

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

    private async Task<(ClientDefinition? Definition, Dictionary<string, string[]> Errors)> ToDefinitionAsync(
        ClientRequest body, string clientId, CancellationToken cancellationToken)
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
        else if (CertificateMethodUnavailable(body.AuthenticationMethod, mtls.Value) is { } unavailable)
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
            if (rule.StartsWith("client:AllowedIpRanges", StringComparison.Ordinal) || rule.StartsWith("client:TokenRateLimit", StringComparison.Ordinal))
            {
                continue; // the access policy's problems are above, under their own fields
            }

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

    /// <summary>The client as the admin API and the console show it (never its secret).</summary>
    public async Task<ClientView> ViewAsync(object application, CancellationToken cancellationToken)
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
