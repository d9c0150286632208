using System.Text.Json;
using Identity.Server.Clients;

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
/// hashed), replace, delete (its tokens revoked; not the console's client nor a declared one), rotate the secret, register a JWKS for <c>private_key_jwt</c>, or a
/// certificate (<c>tls_client_auth</c> by its subject DN or SAN, <c>self_signed_tls_client_auth</c> by a JWKS with x5c).
/// The rules live in <see cref="ClientOperations"/> (shared with the console); this file translates HTTP.
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

    private static async Task<IResult> ListAsync(HttpContext context, ClientOperations operations, string? after, int? limit)
    {
        if (!AdminHttp.TryDecodeCursor(after, out var cursor))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        var (items, more) = await operations.ListAsync(cursor, AdminHttp.ClampLimit(limit), context.RequestAborted);
        return TypedResults.Ok(new Page<ClientView>(items, more ? AdminHttp.EncodeCursor(items[^1].ClientId) : null));
    }

    private static async Task<IResult> GetAsync(string clientId, HttpContext context, ClientOperations operations)
    {
        var application = await operations.FindAsync(clientId, context.RequestAborted);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        context.Response.Headers.ETag = ClientOperations.ETag(application);
        return TypedResults.Ok(await operations.ViewAsync(application, context.RequestAborted));
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ClientOperations operations)
    {
        var (body, problem) = await AdminHttp.ReadAsync<ClientRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var created = await operations.CreateAsync(body!, context.Admin().Actor, context.RequestAborted);
        if (!created.Result.Succeeded)
        {
            return AdminHttp.Refused(created.Result);
        }

        context.Response.Headers.ETag = created.ETag;
        return TypedResults.Created($"/admin/v1/clients/{created.Client!.ClientId}", new ClientCreated(created.Client, created.Secret));
    }

    private static async Task<IResult> ReplaceAsync(string clientId, HttpContext context, ClientOperations operations)
    {
        var application = await operations.FindAsync(clientId, context.RequestAborted);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        if (AdminHttp.CheckIfMatch(context.Request, ClientOperations.ETag(application)) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<ClientRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var replaced = await operations.ReplaceAsync(application, body!, context.Admin().Actor, context.RequestAborted);
        if (!replaced.Result.Succeeded)
        {
            return AdminHttp.Refused(replaced.Result);
        }

        context.Response.Headers.ETag = replaced.ETag;
        return TypedResults.Ok(replaced.Client);
    }

    private static async Task<IResult> DeleteAsync(string clientId, HttpContext context, ClientOperations operations)
    {
        var application = await operations.FindAsync(clientId, context.RequestAborted);
        if (application is not null && await operations.DeleteAsync(application, context.Admin().Actor, context.RequestAborted) is { Succeeded: false } refused)
        {
            return AdminHttp.Refused(refused); // 409: the console's client, or one declared in configuration
        }

        return TypedResults.NoContent(); // idempotent
    }

    private static async Task<IResult> RotateSecretAsync(string clientId, HttpContext context, ClientOperations operations)
    {
        var application = await operations.FindAsync(clientId, context.RequestAborted);
        if (application is null)
        {
            return AdminHttp.NotFound("client");
        }

        if (AdminHttp.CheckIfMatch(context.Request, ClientOperations.ETag(application)) is { } precondition)
        {
            return precondition;
        }

        var rotated = await operations.RotateSecretAsync(application, context.Admin().Actor, context.RequestAborted);
        if (!rotated.Result.Succeeded)
        {
            return AdminHttp.Refused(rotated.Result);
        }

        context.Response.Headers.ETag = rotated.ETag;
        return TypedResults.Ok(new SecretRotated(rotated.Secret!));
    }
}
