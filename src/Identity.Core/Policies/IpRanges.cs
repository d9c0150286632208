using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Identity.Core.Policies;

/// <summary>CIDR allow-lists (<see cref="IpAllowList"/>), IPv4 and IPv6.</summary>
public static class IpRanges
{
    /// <summary>
    /// Whether <paramref name="address"/> is inside one of <paramref name="cidrs"/>. An empty list allows every
    /// address; otherwise an unknown address (<c>null</c>) is refused, and so is every address when an entry cannot be
    /// parsed (fail closed: <see cref="AccountPolicy.Parse"/> refuses such a list before it is stored). An IPv4-mapped
    /// IPv6 address (<c>::ffff:10.1.2.3</c>, what a dual-stack socket reports) is compared as the IPv4 address it carries.
    /// </summary>
    public static bool Allows(IReadOnlyList<string> cidrs, IPAddress? address)
    {
        ArgumentNullException.ThrowIfNull(cidrs);
        var networks = new IPNetwork[cidrs.Count];
        for (var i = 0; i < networks.Length; i++)
        {
            if (!TryParseRange(cidrs[i], out networks[i], out _))
            {
                return false;
            }
        }

        return AllowsParsed(networks, address);
    }

    /// <summary>
    /// <see cref="Allows(IReadOnlyList{string}, IPAddress?)"/> for ranges parsed once (<see cref="TryParseRange"/>): an
    /// empty list allows every address, an unknown one is refused, an IPv4-mapped address counts as its IPv4 address.
    /// </summary>
    public static bool AllowsParsed(IReadOnlyList<IPNetwork> networks, IPAddress? address)
    {
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count == 0)
        {
            return true;
        }

        if (address is null)
        {
            return false;
        }

        address = Normalize(address);
        for (var i = 0; i < networks.Count; i++)
        {
            if (Contains(networks[i], address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address unchanged.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// Parses one CIDR range, strictly: an address, a slash and a prefix length, with no bit set after the prefix
    /// (<c>10.1.0.0/8</c> is refused rather than read as <c>10.0.0.0/8</c>: it is more likely a typo for
    /// <c>10.1.0.0/16</c>, and on an allow-list that guess would open the whole /8).
    /// </summary>
    public static bool TryParseRange(string cidr, out IPNetwork network, [NotNullWhen(false)] out string? problem)
    {
        ArgumentNullException.ThrowIfNull(cidr);
        network = default;
        var slash = cidr.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) || !IPNetwork.TryParse(cidr, out network)
            || !IsPlainAddress(address, cidr.AsSpan(0, slash)))
        {
            problem = "Not a CIDR range: an IPv4 or IPv6 address and a prefix length, such as \"10.0.0.0/8\" or \"2001:db8::/32\".";
            return false;
        }

        if (!network.BaseAddress.Equals(address))
        {
            problem = $"Bits are set after the /{network.PrefixLength} prefix: the range starting there is \"{network}\".";
            return false;
        }

        problem = null;
        return true;
    }

    /// <summary>
    /// IPv4 only as four decimal numbers (the parser also takes "010.0.0.0" as octal 8.0.0.0, "10/8" as 0.0.0.10);
    /// IPv6 without a zone (<c>%eth0</c>), which has no meaning in a range.
    /// </summary>
    private static bool IsPlainAddress(IPAddress address, ReadOnlySpan<char> text) => address.AddressFamily switch
    {
        AddressFamily.InterNetwork => text.SequenceEqual(address.ToString()),
        AddressFamily.InterNetworkV6 => address.ScopeId == 0 && !text.Contains('%'),
        _ => false,
    };

    private static bool Contains(IPNetwork network, IPAddress address)
    {
        if (network.BaseAddress.AddressFamily == address.AddressFamily)
        {
            return network.Contains(address);
        }

        // An IPv4 address against a range written in IPv4-mapped form (::ffff:10.0.0.0/104).
        return network.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 && network.Contains(address.MapToIPv6());
    }
}
