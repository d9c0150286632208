using System.Net;
using System.Net.Http.Headers;

namespace Identity.Region.Tokens;

/// <summary>
/// Sets <c>Authorization: Bearer</c> (RFC 6750 §2.1) on every outgoing request from an <see cref="IdentityTokenClient"/>.
/// On a 401 the token is dropped and a request without a body is sent once more with a new one (a token revoked, or
/// signed with a key the API no longer trusts).
/// </summary>
public sealed class IdentityAccessTokenHandler(IdentityTokenClient tokens) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var token = await tokens.GetTokenAsync(cancellationToken);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized || request.Content is not null)
        {
            return response;
        }

        response.Dispose();
        tokens.Invalidate(token);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await tokens.GetTokenAsync(cancellationToken));
        return await base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// The innermost handler of the token client's own HttpClient: adds the client's credentials to each attempt of a
/// token request (RFC 6749 §2.3), so that every retry is authenticated afresh.
/// </summary>
internal sealed class ClientAuthenticationHandler(IdentityTokenClient client, TimeProvider time) : DelegatingHandler
{
    public static readonly HttpRequestOptionsKey<IReadOnlyDictionary<string, string>> Form = new("Identity.Region.TokenRequestForm");

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Options.TryGetValue(Form, out var form))
        {
            var attempt = new Dictionary<string, string>(form);
            client.Authentication.Apply(request, attempt, client.Options, time.GetUtcNow());
            request.Content = new FormUrlEncodedContent(attempt);
        }

        return base.SendAsync(request, cancellationToken);
    }
}
