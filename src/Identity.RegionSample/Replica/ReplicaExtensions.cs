using Identity.Region;
using Identity.RegionSample.SignIn;

namespace Identity.RegionSample.Replica;

public static class ReplicaExtensions
{
    /// <summary>
    /// The region's user replica through <see cref="IdentityRegionExtensions.AddIdentityRegion"/>. The sample is one
    /// confidential client for both sign-in and sync, so whatever the <c>IdentityRegion</c> section leaves out comes
    /// from the <c>Identity</c> section; the replica is a SQLite file per region under <c>data/</c>. No broker is
    /// configured yet: the replica is filled by resync (at start and with the "Resync now" button).
    /// </summary>
    public static IHostApplicationBuilder AddRegionReplica(this IHostApplicationBuilder builder)
    {
        var signIn = builder.Configuration.GetSection(RegionSignInOptions.SectionName);
        builder.AddIdentityRegion(region => region.ConfigureOptions(options =>
        {
            options.Region = Fallback(options.Region, signIn[nameof(RegionSignInOptions.Region)]);
            options.ClientId = Fallback(options.ClientId, signIn[nameof(RegionSignInOptions.ClientId)]);
            options.ClientSecret = Fallback(options.ClientSecret, signIn[nameof(RegionSignInOptions.ClientSecret)]);
            if (options.Authority is null && Uri.TryCreate(signIn[nameof(RegionSignInOptions.Authority)], UriKind.Absolute, out var authority))
            {
                options.Authority = authority;
            }

            options.ReplicaConnectionString = Fallback(options.ReplicaConnectionString, $"Data Source=data/replica-{options.Region}.db");
        }));
        return builder;
    }

    private static string Fallback(string value, string? fallback) => string.IsNullOrEmpty(value) ? fallback ?? "" : value;
}
