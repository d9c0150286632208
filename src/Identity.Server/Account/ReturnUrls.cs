using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.Account;

/// <summary>The one rule for following a return URL: only a local path (no open redirect).</summary>
public static class ReturnUrls
{
    /// <summary>The URL when it is local (not <c>//host</c>, not <c>/\host</c>, not absolute); otherwise <c>null</c>.</summary>
    public static string? LocalOrNull(this IUrlHelper url, string? returnUrl)
    {
        ArgumentNullException.ThrowIfNull(url);
        return !string.IsNullOrEmpty(returnUrl) && url.IsLocalUrl(returnUrl) ? returnUrl : null;
    }
}
